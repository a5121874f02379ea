"""Deciding and recording moves of the `champion` alias.

`decide_promotion` is a pure function of the evidence (metrics on the same data, data gate,
signature) and the gates from settings; `record_decision` applies a decision to the registry
under a lock and writes it on the model version as tags. Every move of `@champion` (automatic,
approved, by hand, rollback) goes through the same record.
"""

import getpass
import json
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

from prefect import task

from inferloop.errors import InferloopError
from inferloop.settings import Settings
from tasks.registry import (
    ModelVersionRef,
    RegistryError,
    connection_failed,
    find_alias,
    mlflow_client,
    unreachable_error,
)

PRIMARY_METRIC = "roc_auc"
PROMOTION_LOCK = "inferloop-promotion"


class UnsafePromotionError(InferloopError):
    """A requested move of @champion is unsafe (unknown version, incompatible signature)."""


@dataclass(frozen=True)
class PromotionGates:
    min_roc_auc: float
    min_improvement: float  # the challenger must beat the champion's ROC AUC by at least this
    max_pr_auc_regression: float  # tolerated drop in PR AUC vs the champion


@dataclass
class GateCheck:
    name: str
    passed: bool
    detail: str


@dataclass
class PromotionDecision:
    """Why `@champion` moved or did not: the same object in tags, artifacts and the CLI."""

    model_name: str
    challenger_version: str
    champion_version: str | None
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    checks: list[GateCheck]
    verdict: str  # "promote" | "reject" | "rollback"
    reason: str
    mode: str  # "auto" | "approve" | "manual" | "bootstrap" | "rollback"
    evaluation: str  # what data the metrics are on
    decided_by: str = "inferloop"
    decided_at: str = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0).isoformat())

    @property
    def promoted(self) -> bool:
        return self.verdict in ("promote", "rollback")

    def to_dict(self) -> dict:
        return asdict(self)


def decide_promotion(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    data_gate_passed: bool,
    signature_compatible: bool,
    gates: PromotionGates,
) -> tuple[str, str, list[GateCheck]]:
    """The verdict ("promote" or "reject"), its reason and every check, from the evidence alone.

    Promote only when every check passes; the primary metric can therefore never decrease
    through an automatic promotion (`min_improvement` ≥ 0).
    """
    score = challenger[PRIMARY_METRIC]
    checks = [
        GateCheck(
            "data_gate",
            data_gate_passed,
            "training data passed the gate" if data_gate_passed else "training data was not gated",
        ),
        GateCheck(
            "signature",
            signature_compatible,
            "accepts the champion's inputs" if signature_compatible else "input schema differs",
        ),
        GateCheck(
            "min_roc_auc",
            score >= gates.min_roc_auc,
            f"ROC AUC {score:.4f} vs minimum {gates.min_roc_auc:.4f}",
        ),
    ]
    if champion is None:
        checks.append(GateCheck("beats_champion", True, "no champion yet"))
    else:
        needed = champion[PRIMARY_METRIC] + gates.min_improvement
        checks.append(
            GateCheck(
                "beats_champion",
                score >= needed,
                f"ROC AUC {score:.4f} vs champion {champion[PRIMARY_METRIC]:.4f}"
                f" + {gates.min_improvement:.4f}",
            )
        )
        floor = champion["pr_auc"] - gates.max_pr_auc_regression
        checks.append(
            GateCheck(
                "no_pr_auc_regression",
                challenger["pr_auc"] >= floor,
                f"PR AUC {challenger['pr_auc']:.4f} vs floor {floor:.4f}",
            )
        )
    failed = [c for c in checks if not c.passed]
    if failed:
        return "reject", "; ".join(f"{c.name}: {c.detail}" for c in failed), checks
    return "promote", "passed every gate" + ("" if champion else " (first champion)"), checks


def gates_from(settings: Settings) -> PromotionGates:
    return PromotionGates(settings.min_roc_auc, settings.min_improvement, settings.max_pr_auc_regression)


def input_schema(settings: Settings, ref: ModelVersionRef) -> list[dict]:
    from mlflow.models import get_model_info

    mlflow_client(settings)
    signature = get_model_info(ref.uri).signature
    return signature.inputs.to_dict() if signature else []


def signature_compatible(challenger: list[dict], champion: list[dict]) -> bool:
    """The challenger needs no column the champion's callers do not send, with the same types."""
    offered = {c["name"]: c["type"] for c in champion}
    return all(offered.get(c["name"]) == c["type"] for c in challenger if c.get("required", True))


def get_version(settings: Settings, version: str) -> ModelVersionRef:
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings)
    name = settings.registered_model_name
    try:
        found = client.get_model_version(name, str(version))
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise UnsafePromotionError(
                f"{name} has no version {version}: pick one listed in the MLflow UI (Models > {name})"
            ) from None
        if connection_failed(error):
            raise unreachable_error(settings) from None
        raise RegistryError(f"MLflow could not read {name} v{version}: {error.message}") from None
    return ModelVersionRef(name=name, version=str(found.version), run_id=found.run_id)


def data_gate_passed(settings: Settings, ref: ModelVersionRef) -> bool:
    run = mlflow_client(settings).get_run(ref.run_id)
    return run.data.tags.get("inferloop.data_gate") == "accepted"


def decided_by_person() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def promotion_lock(settings: Settings):
    """At most one decision is applied at a time (a Prefect global concurrency limit of 1)."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(PROMOTION_LOCK)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another process created it first
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=PROMOTION_LOCK, limit=1)
                )
    return concurrency(PROMOTION_LOCK, occupy=1, strict=True, timeout_seconds=300)


def record_decision(settings: Settings, decision: PromotionDecision, lock: bool = True) -> PromotionDecision:
    """Apply `decision` to the registry and tag the challenger version with it.

    Under the promotion lock the champion is re-read: if it changed since the evidence was
    gathered, the decision is turned into a rejection (rerun promote) rather than applied on
    stale evidence. On promotion the old champion stays reachable as `previous_champion`.
    """
    if not lock:
        return _apply(settings, decision)
    with promotion_lock(settings):
        return _apply(settings, decision)


def _apply(settings: Settings, decision: PromotionDecision) -> PromotionDecision:
    client = mlflow_client(settings)
    name = decision.model_name
    current = find_alias(settings, settings.champion_alias)
    current_version = current.version if current else None
    if decision.promoted and current_version != decision.champion_version:
        decision.verdict = "reject"
        decision.reason = (
            f"@{settings.champion_alias} moved to v{current_version} while this decision was "
            f"made on v{decision.champion_version}: rerun promote"
        )
    if decision.promoted:
        if current_version and current_version != decision.challenger_version:
            client.set_registered_model_alias(name, settings.previous_champion_alias, current_version)
        client.set_registered_model_alias(name, settings.champion_alias, decision.challenger_version)
        if decision.mode != "rollback" and _alias_version(settings, settings.challenger_alias) == (
            decision.challenger_version
        ):
            client.delete_registered_model_alias(name, settings.challenger_alias)
    for key, value in decision_tags(decision).items():
        client.set_model_version_tag(name, decision.challenger_version, key, value)
    return decision


def _alias_version(settings: Settings, alias: str) -> str | None:
    ref = find_alias(settings, alias)
    return ref.version if ref else None


def decision_tags(decision: PromotionDecision) -> dict[str, str]:
    tags = {
        "verdict": decision.verdict,
        "reason": decision.reason[:4000],
        "mode": decision.mode,
        "decided_by": decision.decided_by,
        "decided_at": decision.decided_at,
        "champion_before": decision.champion_version or "none",
        "evaluation": decision.evaluation,
        "challenger_metrics": json.dumps({k: round(v, 5) for k, v in decision.challenger_metrics.items()}),
    }
    if decision.champion_metrics:
        tags["champion_metrics"] = json.dumps({k: round(v, 5) for k, v in decision.champion_metrics.items()})
    return {f"inferloop.decision.{k}": v for k, v in tags.items()}


def promotion_window(
    settings: Settings, challenger: ModelVersionRef, latest_labelled: date
) -> tuple[date, date, str]:
    """Recent labelled days the challenger was not fitted on: the days after its training window
    (at most `promotion_window_days`), else its own held-out days."""
    params = mlflow_client(settings).get_run(challenger.run_id).data.params
    window_end = date.fromisoformat(params["window_end"])
    if latest_labelled > window_end:
        start = max(
            window_end + timedelta(days=1),
            latest_labelled - timedelta(days=settings.promotion_window_days - 1),
        )
        return start, latest_labelled, "labelled days after the challenger's training window"
    holdout = int(params.get("holdout_days", settings.holdout_days))
    return window_end - timedelta(days=holdout - 1), window_end, "the challenger's held-out days"


def evaluate_version(settings: Settings, ref: ModelVersionRef, frame) -> dict[str, float]:
    from tasks.data import positive_target, prepare_features
    from tasks.registry import load_model
    from tasks.training import evaluate

    spec = settings.dataset
    model = load_model(settings, ref)
    return evaluate(
        model, prepare_features(frame, spec), positive_target(frame, spec), settings.decision_threshold
    )


@task(name="gather-promotion-evidence")
def challenger_decision(
    settings: Settings,
    challenger: ModelVersionRef,
    champion: ModelVersionRef | None,
    frame,
    evaluation: str,
    mode: str,
) -> PromotionDecision:
    """Score champion and challenger on the same rows and decide with the configured gates."""
    challenger_metrics = evaluate_version(settings, challenger, frame)
    champion_metrics = evaluate_version(settings, champion, frame) if champion else None
    compatible = champion is None or signature_compatible(
        input_schema(settings, challenger), input_schema(settings, champion)
    )
    verdict, reason, checks = decide_promotion(
        challenger_metrics,
        champion_metrics,
        data_gate_passed(settings, challenger),
        compatible,
        gates_from(settings),
    )
    return PromotionDecision(
        model_name=challenger.name,
        challenger_version=challenger.version,
        champion_version=champion.version if champion else None,
        challenger_metrics=challenger_metrics,
        champion_metrics=champion_metrics,
        checks=checks,
        verdict=verdict,
        reason=reason,
        mode=mode,
        evaluation=evaluation,
        decided_by="promote flow",
    )


def bootstrap_decision(
    settings: Settings, ref: ModelVersionRef, holdout_metrics: dict[str, float]
) -> PromotionDecision:
    """No champion yet: the first version that clears the absolute gates becomes champion."""
    verdict, reason, checks = decide_promotion(holdout_metrics, None, True, True, gates_from(settings))
    return PromotionDecision(
        model_name=ref.name,
        challenger_version=ref.version,
        champion_version=None,
        challenger_metrics=holdout_metrics,
        champion_metrics=None,
        checks=checks,
        verdict=verdict,
        reason=reason,
        mode="bootstrap",
        evaluation="the challenger's held-out days",
        decided_by="train flow (bootstrap)",
    )


def manual_decision(
    settings: Settings, target: ModelVersionRef, champion: ModelVersionRef | None, mode: str, decided_by: str
) -> PromotionDecision:
    """A person's move of @champion (promote --version N, rollback): only safety is checked.

    Raises UnsafePromotionError, after recording the refusal, when the move is unsafe.
    """
    run = mlflow_client(settings).get_run(target.run_id)
    metrics = {k.removeprefix("holdout_"): v for k, v in run.data.metrics.items() if k.startswith("holdout_")}
    compatible = champion is None or signature_compatible(
        input_schema(settings, target), input_schema(settings, champion)
    )
    checks = [
        GateCheck(
            "signature", compatible, "accepts the champion's inputs" if compatible else "input schema differs"
        ),
        GateCheck("data_gate", data_gate_passed(settings, target), "training data passed the gate"),
    ]
    failed = [c for c in checks if not c.passed]
    decision = PromotionDecision(
        model_name=target.name,
        challenger_version=target.version,
        champion_version=champion.version if champion else None,
        challenger_metrics=metrics,
        champion_metrics=None,
        checks=checks,
        verdict="reject" if failed else ("rollback" if mode == "rollback" else "promote"),
        reason="; ".join(f"{c.name}: {c.detail}" for c in failed) or f"{mode} by hand",
        mode=mode,
        evaluation="holdout metrics logged at training (informational)",
        decided_by=decided_by,
    )
    if failed:
        record_decision(settings, decision)
        raise UnsafePromotionError(
            f"Refused to move @{settings.champion_alias} to {target.name} v{target.version}: "
            f"{decision.reason}"
        )
    return decision
