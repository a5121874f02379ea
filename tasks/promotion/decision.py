"""Deciding and recording moves of the `champion` alias.

`decide_promotion` is a pure function of the evidence (metrics on the same data, data gate,
signature) and the gates from settings; `record_decision` applies a decision to the registry
under a lock and writes it on the model version as tags. Every move of `@champion` (automatic,
approved, by hand, rollback) goes through the same record.
"""

import getpass
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

from prefect import task

from inferloop.core.errors import InferloopError
from inferloop.core.periods import parse_key
from inferloop.core.registry import ModelNotFound, ModelVersionRef
from inferloop.core.settings import Settings
from inferloop.tasks.model.comparison import (
    CLASS_METRICS,
    MetricDifference,
    comparable_metric,
    paired_difference,
    rarer_class_rows,
)
from inferloop.tasks.model.registry import find_alias, model_registry

HELD_OUT_DAYS = "the challenger's held-out days"
FLOOR_METRIC = "roc_auc"  # a model below `min_roc_auc` never becomes champion, whatever it is compared with


class UnsafePromotionError(InferloopError):
    """A requested move of @champion is unsafe (unknown version, incompatible signature)."""


@dataclass(frozen=True)
class PromotionGates:
    metric: str  # the monitored metric: what the loop is judged on
    min_roc_auc: float
    min_improvement: float  # the challenger's metric minus the champion's, on the same rows, at least
    max_metric_regression: float  # the comparison interval's lower end may not fall below minus this
    min_rows: int  # fewer compared rows: no decision on so little evidence
    min_class_rows: int = 0  # fewer of the rarer class: no ROC AUC floor, no class-weighing comparison


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
    comparison: dict | None = None  # the paired MetricDifference the verdict rests on
    model_card: str | None = None  # the version's model card (runs:/ URI), once recorded

    @property
    def promoted(self) -> bool:
        return self.verdict in ("promote", "rollback")

    def to_dict(self) -> dict:
        return asdict(self)


def decide_promotion(
    challenger: dict[str, float],
    difference: MetricDifference | None,
    data_gate_passed: bool,
    signature_compatible: bool,
    gates: PromotionGates,
    failed_in_hindsight: list[str] | None = None,
    floor_rarer_class_rows: int | None = None,
) -> tuple[str, str, list[GateCheck]]:
    """The verdict ("promote" or "reject"), its reason and every check, from the evidence alone.
    `difference` is challenger minus champion on the same rows (None: no champion yet).

    Promote only when every check passes: enough compared rows, the monitored metric at least
    `min_improvement` better on them (so it never decreases through an automatic promotion) and
    not clearly worse (the interval's lower end above `-max_metric_regression`). While recent
    promotions failed in hindsight (`failed_in_hindsight`, their descriptions), the bar is raised:
    the challenger must be clearly better (the interval's lower end above 0). The ROC AUC floor
    needs `min_class_rows` of the rarer class (`floor_rarer_class_rows`: how many the challenger's
    ROC AUC rests on; None: not counted): with fewer, a first champion waits, and a challenger is
    left to the comparison (made on the probabilities' score when the monitored metric weighs
    each class and the rows hold too few of the rarer one: `comparable_metric`).
    """
    floor = challenger[FLOOR_METRIC]
    floor_judged = floor_rarer_class_rows is None or floor_rarer_class_rows >= gates.min_class_rows
    if floor_judged:
        detail = f"ROC AUC {floor:.4f} vs minimum {gates.min_roc_auc:.4f}"
        floor_check = GateCheck("min_roc_auc", floor >= gates.min_roc_auc, detail)
    else:  # with a champion, the comparison on every row keeps the model no worse than it; else wait
        floor_check = GateCheck(
            "min_roc_auc",
            difference is not None,
            f"ROC AUC {floor:.4f} rests on {floor_rarer_class_rows} rows of the rarer class, fewer than "
            f"INFERLOOP_MIN_CLASS_ROWS={gates.min_class_rows}: too few to judge, "
            + ("the comparison with the champion decides" if difference else "waiting for more labels"),
        )
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
        floor_check,
    ]
    if difference is None:
        checks.append(GateCheck("beats_champion", True, "no champion yet"))
    else:
        checks.append(enough_evidence(difference, gates))
        checks.append(
            GateCheck(
                "beats_champion",
                difference.difference >= gates.min_improvement
                and difference.lower >= -gates.max_metric_regression,
                f"{difference.describe()}; needs {gates.min_improvement:+.4f} or more, lower end above "
                f"{-gates.max_metric_regression:+.4f}",
            )
        )
    if difference is not None and failed_in_hindsight:
        checks.append(
            GateCheck(
                "clearly_better_after_failures",
                difference.lower > 0,
                f"{len(failed_in_hindsight)} recent promotion(s) did worse in hindsight "
                f"({'; '.join(failed_in_hindsight)}): the lower end {difference.lower:+.4f} must be above 0",
            )
        )
    failed = [c for c in checks if not c.passed]
    if failed:
        return "reject", "; ".join(f"{c.name}: {c.detail}" for c in failed), checks
    return "promote", "passed every gate" + ("" if difference else " (first champion)"), checks


def enough_evidence(difference: MetricDifference, gates: PromotionGates) -> GateCheck:
    """Enough compared rows, and for a class-weighing metric enough of the rarer class."""
    detail = f"{difference.rows} compared rows vs minimum {gates.min_rows} (INFERLOOP_MIN_PROMOTION_ROWS)"
    passed = difference.rows >= gates.min_rows
    if difference.metric in CLASS_METRICS and difference.rarer_class_rows >= 0:
        passed = passed and difference.rarer_class_rows >= gates.min_class_rows
        detail += (
            f", {difference.rarer_class_rows} of the rarer class vs minimum {gates.min_class_rows} "
            "(INFERLOOP_MIN_CLASS_ROWS)"
        )
    return GateCheck("enough_evidence", passed, detail)


def gates_from(settings: Settings) -> PromotionGates:
    promotion = settings.promotion
    return PromotionGates(
        settings.monitoring.monitor_metric,
        promotion.min_roc_auc,
        promotion.min_improvement,
        promotion.max_metric_regression,
        promotion.min_promotion_rows,
        settings.training.min_class_rows,
    )


def input_schema(settings: Settings, ref: ModelVersionRef) -> list[dict]:
    return model_registry(settings.registry).input_schema(ref)


def signature_compatible(challenger: list[dict], champion: list[dict]) -> bool:
    """The challenger needs no column the champion's callers do not send, with the same types."""
    offered = {c["name"]: c["type"] for c in champion}
    return all(offered.get(c["name"]) == c["type"] for c in challenger if c.get("required", True))


def get_version(settings: Settings, version: str) -> ModelVersionRef:
    registry = model_registry(settings.registry)
    try:
        return registry.get_version(version)
    except ModelNotFound as error:
        name = registry.model_name
        raise UnsafePromotionError(
            f"{name} has no version {version}: pick one listed in the MLflow UI (Models > {name})"
        ) from error


def rollback_target(settings: Settings) -> ModelVersionRef:
    """The version a rollback restores: the one with @previous_champion."""
    previous = find_alias(settings.registry, settings.registry.previous_champion_alias)
    if previous is None:
        raise UnsafePromotionError(
            f"No version has @{settings.registry.previous_champion_alias}: nothing to roll back to "
            f"(use `inferloop promote --version N` to pick one)"
        )
    return previous


def data_gate_passed(settings: Settings, ref: ModelVersionRef) -> bool:
    return model_registry(settings.registry).run(ref.run_id).tags.get("inferloop.data_gate") == "accepted"


def decided_by_person() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def promotion_window(
    settings: Settings,
    challenger: ModelVersionRef,
    latest_labelled: date,
    champion: ModelVersionRef | None = None,
) -> tuple[date, date, str]:
    """Recent labelled partitions the challenger was not fitted on: those after its training
    window (at most `promotion_window_days`), else its own held-out ones; and never one the
    champion was fitted on (it would score its own training rows: a challenger held out on days
    that overlap the champion's window looked clearly worse than a stale champion). The window is
    empty (start after end) while no such partition is labelled yet."""
    registry = model_registry(settings.registry)
    params = registry.run(challenger.run_id).params
    window_end = parse_key(params["window_end"])
    partitioning = settings.dataset.partitioning
    if latest_labelled > window_end:
        end, evaluation = latest_labelled, "labelled days after the challenger's training window"
        start = max(
            partitioning.shift(window_end, 1),
            partitioning.shift(latest_labelled, -(settings.promotion.promotion_window_days - 1)),
        )
    else:
        end, evaluation = window_end, HELD_OUT_DAYS
        held = int(params.get("holdout_days", settings.training.holdout_days))
        start = (
            parse_key(params["holdout_start"])
            if "holdout_start" in params
            else partitioning.shift(window_end, -(held - 1))
        )
    champion_fitted_until = champion and registry.run(champion.run_id).params.get("window_end")
    if champion_fitted_until and start <= parse_key(champion_fitted_until):
        start = partitioning.shift(parse_key(champion_fitted_until), 1)
    return start, end, evaluation


def no_unseen_rows_decision(
    settings: Settings, challenger: ModelVersionRef, champion: ModelVersionRef, window: str, mode: str
) -> PromotionDecision:
    """Every partition the challenger could be judged on was in the champion's training window:
    nothing fair to compare on yet, so no promotion (the next retrain has more)."""
    check = GateCheck(
        "enough_evidence",
        False,
        f"0 compared rows: {window} were all in @{settings.registry.champion_alias} "
        f"v{champion.version}'s training window",
    )
    return _decision(
        challenger,
        champion,
        logged_holdout_metrics(settings, challenger),
        None,
        ("reject", f"{check.name}: {check.detail}", [check]),
        mode=mode,
        evaluation=window,
    )


def held_out_scores(holdout, frame, id_column: str):
    """The validation fit's scores of `frame`'s rows, in `frame`'s order."""
    scores = frame[[id_column]].merge(holdout, on=id_column, how="left", validate="one_to_one")["score"]
    if scores.isna().any():
        raise UnsafePromotionError(
            f"{int(scores.isna().sum())} compared rows have no held-out score: compare on the "
            "challenger's held-out days or on days after its window"
        )
    return scores.to_numpy(float)


def version_scores(settings: Settings, ref: ModelVersionRef, frame):
    from inferloop.tasks.data.feeds import prepare_features
    from inferloop.tasks.model.prediction import positive_scores
    from inferloop.tasks.model.registry import load_model

    return positive_scores(load_model(settings.registry, ref), prepare_features(frame, settings.dataset))


@task(name="gather-promotion-evidence")
def challenger_decision(
    settings: Settings,
    challenger: ModelVersionRef,
    champion: ModelVersionRef | None,
    frame,
    evaluation: str,
    mode: str,
    holdout=None,
) -> PromotionDecision:
    """Score champion and challenger on the same rows, compare them on the monitored metric
    (paired, resampling whole days) and decide with the configured gates. `holdout`: the
    challenger's validation scores of these rows (its registered model was refitted on them)."""
    from inferloop.tasks.data.feeds import positive_target
    from inferloop.tasks.model.training import classification_metrics
    from inferloop.tasks.monitoring.hindsight import recent_failures

    spec, default = settings.dataset, settings.scoring.decision_threshold
    # Each version labels rows at its own threshold, as it would in production.
    challenger_threshold = challenger.threshold(default)
    target = positive_target(frame, spec).to_numpy()
    # Bootstrap blocks are the feed's partitions: a month's days are not independent evidence.
    partitions = spec.partitioning.keys_of(frame[spec.time_column]).to_numpy()
    challenger_scores = (
        held_out_scores(holdout, frame, spec.id_column)
        if holdout is not None
        else version_scores(settings, challenger, frame)
    )
    challenger_metrics = classification_metrics(target, challenger_scores, challenger_threshold)
    champion_metrics, difference = None, None
    if champion:
        champion_scores = version_scores(settings, champion, frame)
        champion_metrics = classification_metrics(target, champion_scores, champion.threshold(default))
        difference = paired_difference(
            comparable_metric(settings.monitoring.monitor_metric, target, settings.training.min_class_rows),
            target,
            challenger_scores,
            champion_scores,
            partitions,
            challenger_threshold,
            threshold_b=champion.threshold(default),
        )
    compatible = champion is None or signature_compatible(
        input_schema(settings, challenger), input_schema(settings, champion)
    )
    outcome = decide_promotion(
        challenger_metrics,
        difference,
        data_gate_passed(settings, challenger),
        compatible,
        gates_from(settings),
        [v.describe() for v in recent_failures(settings.registry, challenger.version)] if champion else None,
        rarer_class_rows(target),
    )
    decision = _decision(
        challenger,
        champion,
        challenger_metrics,
        champion_metrics,
        outcome,
        mode=mode,
        evaluation=evaluation,
    )
    decision.comparison = difference.to_dict() if difference else None
    return decision


def _decision(
    target: ModelVersionRef,
    champion: ModelVersionRef | None,
    metrics: dict[str, float],
    champion_metrics: dict[str, float] | None,
    outcome: tuple[str, str, list[GateCheck]],
    **how: str,
) -> PromotionDecision:
    verdict, reason, checks = outcome
    return PromotionDecision(
        model_name=target.name,
        challenger_version=target.version,
        champion_version=champion.version if champion else None,
        challenger_metrics=metrics,
        champion_metrics=champion_metrics,
        checks=checks,
        verdict=verdict,
        reason=reason,
        **how,
    )


def bootstrap_decision(
    settings: Settings, ref: ModelVersionRef, holdout_metrics: dict[str, float], holdout_rarer_class_rows: int
) -> PromotionDecision:
    """No champion yet: the first version that clears the absolute gates becomes champion."""
    gates = gates_from(settings)
    outcome = decide_promotion(holdout_metrics, None, True, True, gates, None, holdout_rarer_class_rows)
    return _decision(
        ref,
        None,
        holdout_metrics,
        None,
        outcome,
        mode="bootstrap",
        evaluation=HELD_OUT_DAYS,
        decided_by="train flow (bootstrap)",
    )


def logged_holdout_metrics(settings: Settings, ref: ModelVersionRef) -> dict[str, float]:
    logged = model_registry(settings.registry).run(ref.run_id).metrics
    return {k.removeprefix("holdout_"): v for k, v in logged.items() if k.startswith("holdout_")}


def manual_decision(
    settings: Settings, target: ModelVersionRef, champion: ModelVersionRef | None, mode: str, decided_by: str
) -> PromotionDecision:
    """A person's move of @champion (promote --version N, rollback): only safety is checked
    (signature, data gate); an unsafe move is a rejection the caller records and reports."""
    metrics = logged_holdout_metrics(settings, target)
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
    verdict = "reject" if failed else ("rollback" if mode == "rollback" else "promote")
    reason = "; ".join(f"{c.name}: {c.detail}" for c in failed) or f"{mode} by hand"
    return _decision(
        target,
        champion,
        metrics,
        None,
        (verdict, reason, checks),
        mode=mode,
        evaluation="holdout metrics logged at training (informational)",
        decided_by=decided_by,
    )
