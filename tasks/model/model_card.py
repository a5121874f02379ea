"""A model card per registered version: one markdown artifact on the version's run, built only
from what the registry already records about it.

The card says what the version was trained on (window, content hash, the logged input), what the
data-quality gate said, its metrics against the champion of the time, every decision about it
(who, when, why) and, where an optimised artifact was checked, its parity result
(`inferloop.optimised.*` tags). It is written at registration and rewritten after every recorded
decision: decisions are appended to `decision_history.json` next to it, since the version's
`inferloop.decision.*` tags hold only the latest one. The version's `inferloop.model_card` tag
names the card. Both are kept by model name and version (`model_card/NAME/vN/`): one run may back
several versions (a copy of a version keeps its run).
"""

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from prefect import task

from inferloop.core.registry import ModelNotFound, Registry
from inferloop.core.settings import RegistrySettings
from inferloop.tasks.model.registry import model_registry
from inferloop.tasks.promotion.decision import PromotionDecision
from inferloop.tasks.report_tables import markdown_table

CARD_DIR = "model_card"
CARD_TAG = "inferloop.model_card"
CHAMPION_AT_REGISTRATION_TAG = "inferloop.champion_at_registration"
DECISION_PREFIX = "inferloop.decision."
OPTIMISED_PREFIX = "inferloop.optimised."
HINDSIGHT_TAG = "inferloop.hindsight.verdict"
VALIDATION_REPORTS = "data_quality/validation_reports.json"


@dataclass
class ModelCard:
    """Everything a card shows, gathered from the registry (one object, one rendering)."""

    name: str
    version: str
    run_id: str
    registered_at: str
    aliases: list[str]
    params: dict[str, str]
    metrics: dict[str, float]
    run_tags: dict[str, str]
    inputs: list[dict[str, str]]
    gate_reports: list[dict]
    champion_at_registration: str | None  # its version, None: there was none
    champion_metrics_at_registration: dict[str, float]
    decisions: list[dict]  # oldest first
    hindsight: dict | None
    optimised: dict[str, str] = field(default_factory=dict)
    written_at: str = field(default_factory=lambda: _now())


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def decision_entry(decision: PromotionDecision) -> dict[str, Any]:
    """A decision as the card's history keeps it."""
    return {
        "decided_at": decision.decided_at,
        "verdict": decision.verdict,
        "mode": decision.mode,
        "decided_by": decision.decided_by,
        "reason": decision.reason,
        "champion_before": decision.champion_version,
        "evaluation": decision.evaluation,
        "challenger_metrics": decision.challenger_metrics,
        "champion_metrics": decision.champion_metrics,
        "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in decision.checks],
    }


def _entry_from_tags(tags: dict[str, str]) -> dict[str, Any] | None:
    """The latest decision as the version's tags record it (history written before the card)."""
    decision = {k.removeprefix(DECISION_PREFIX): v for k, v in tags.items() if k.startswith(DECISION_PREFIX)}
    if "verdict" not in decision:
        return None
    before = decision.get("champion_before")
    return {
        "decided_at": decision.get("decided_at", ""),
        "verdict": decision["verdict"],
        "mode": decision.get("mode", ""),
        "decided_by": decision.get("decided_by", ""),
        "reason": decision.get("reason", ""),
        "champion_before": None if before in (None, "none") else before,
        "evaluation": decision.get("evaluation", ""),
        "challenger_metrics": json.loads(decision.get("challenger_metrics", "{}")),
        "champion_metrics": json.loads(decision.get("champion_metrics", "null")),
        "checks": [],
    }


def _same(a: dict, b: dict) -> bool:
    keys = ("decided_at", "verdict", "mode", "decided_by")
    return all(a.get(k) == b.get(k) for k in keys)


def card_path(model_name: str, version: str) -> str:
    """The card's artifact path in the version's run."""
    return f"{CARD_DIR}/{model_name}/v{version}/model_card.md"


def history_path(model_name: str, version: str) -> str:
    return f"{CARD_DIR}/{model_name}/v{version}/decision_history.json"


def decision_history(registry: Registry, version: str, run_id: str, tags: dict[str, str]) -> list[dict]:
    """Every recorded decision about a version, oldest first."""
    path = history_path(registry.model_name, version)
    history = (
        registry.load_run_dict(run_id, path)["decisions"]
        if registry.run_artifact_exists(run_id, path)
        else []
    )
    latest = _entry_from_tags(tags)
    if latest and not any(_same(latest, entry) for entry in history):
        history.append(latest)
    return history


def gather_model_card(registry: Registry, version: str, decisions: list[dict]) -> ModelCard:
    """The card of `version` from the registry's records (and `decisions`, its history)."""
    record = registry.version_record(version)
    run_id, tags = record["run_id"], record["tags"]
    run = registry.run(run_id)
    gate_reports = (
        registry.load_run_dict(run_id, VALIDATION_REPORTS).get("reports", [])
        if registry.run_artifact_exists(run_id, VALIDATION_REPORTS)
        else []
    )
    champion = tags.get(CHAMPION_AT_REGISTRATION_TAG)
    champion = None if champion in (None, "none") else champion
    champion_metrics = {}
    if champion:
        try:
            champion_metrics = _holdout(registry.run(registry.get_version(champion).run_id).metrics)
        except ModelNotFound:  # a copied version's tag names a version of another model
            champion = None
    return ModelCard(
        name=registry.model_name,
        version=str(version),
        run_id=run_id,
        registered_at=_iso(record["created_ms"]),
        aliases=record["aliases"],
        params=run.params,
        metrics=run.metrics,
        run_tags=run.tags,
        inputs=registry.training_inputs(run_id),
        gate_reports=gate_reports,
        champion_at_registration=champion,
        champion_metrics_at_registration=champion_metrics,
        decisions=decisions,
        hindsight=json.loads(tags[HINDSIGHT_TAG]) if HINDSIGHT_TAG in tags else None,
        optimised={
            k.removeprefix(OPTIMISED_PREFIX): v for k, v in tags.items() if k.startswith(OPTIMISED_PREFIX)
        },
    )


def _iso(epoch_ms: int | None) -> str:
    if not epoch_ms:
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).replace(microsecond=0).isoformat()


def _holdout(metrics: dict[str, float]) -> dict[str, float]:
    return {k.removeprefix("holdout_"): v for k, v in metrics.items() if k.startswith("holdout_")}


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def _line(text: Any) -> str:
    """A value fit for one table cell."""
    return " ".join(str(text).split()) if text not in (None, "") else "-"


def model_card_markdown(card: ModelCard) -> str:
    """The card as markdown (what the MLflow artifact holds)."""
    aliases = ", ".join(f"@{a}" for a in card.aliases) or "none"
    parts = [
        f"# Model card: {card.name} v{card.version}",
        markdown_table(
            ["", ""],
            [
                ["registered", _line(card.registered_at)],
                ["training run", f"`{card.run_id}`"],
                ["aliases now", aliases],
                ["card written", card.written_at],
            ],
        ),
        _training_data(card),
        _gate(card),
        _metrics(card),
        _decisions(card),
    ]
    if card.hindsight:
        hindsight = card.hindsight
        parts.append(
            "## Promotion judged in hindsight\n\n"
            f"Against v{_line(hindsight.get('replaced_version'))}, the version it replaced: "
            f"{_line(hindsight.get('verdict'))} on {_line(hindsight.get('rows'))} labelled rows."
        )
    parts.append(_optimised(card))
    return "\n\n".join(parts) + "\n"


def _training_data(card: ModelCard) -> str:
    params, tags = card.params, card.run_tags
    window = tags.get("inferloop.window") or (
        f"{params['window_start']}..{params['window_end']}" if "window_start" in params else None
    )
    rows = [
        ["window", _line(window)],
        ["rows trained on", _line(params.get("train_rows"))],
        ["rows held out", f"{_line(params.get('holdout_rows'))} (from {_line(params.get('holdout_start'))})"],
        [
            "content hash (SHA-256 of the rows)",
            f"`{tags['inferloop.data_hash']}`" if "inferloop.data_hash" in tags else "-",
        ],
        ["source", _line(tags.get("inferloop.source_uri"))],
    ]
    rows += [
        [f"logged input ({_line(i['context'])})", f"{_line(i['name'])}, digest `{i['digest']}`"]
        for i in card.inputs
    ]
    return "## Training data\n\n" + markdown_table(["", ""], rows)


def _gate(card: ModelCard) -> str:
    verdict = card.run_tags.get("inferloop.data_gate", "not recorded")
    rows_in = card.metrics.get("gate_rows_in")
    quarantined = card.metrics.get("gate_rows_quarantined")
    counts = f": {int(rows_in)} rows in" if rows_in is not None else ""
    counts += f", {int(quarantined)} quarantined" if rows_in is not None and quarantined is not None else ""
    text = f"## Data-quality gate\n\nTraining data {verdict}{counts}."
    if card.gate_reports:
        text += "\n\n" + markdown_table(
            ["partition", "suite", "decision", "rows in", "quarantined", "reasons"],
            [
                [
                    *(_line(r.get(k)) for k in ("partition_date", "suite", "decision", "rows_in")),
                    _line(r.get("rows_quarantined")),
                    _line("; ".join(r.get("reasons") or [])),
                ]
                for r in card.gate_reports
            ],
        )
    return text


def _metrics(card: ModelCard) -> str:
    own = _holdout(card.metrics)
    champion = card.champion_at_registration
    if champion:
        heading = f"champion v{champion} (its own held-out days)"
        intro = (
            "On each model's held-out days, against the champion when this version was "
            f"registered (v{champion})."
        )
    else:
        heading = "champion"
        intro = "No champion when this version was registered."
    if (threshold := card.params.get("decision_threshold")) is not None:
        how = card.params.get("threshold_choice", "the setting")
        intro += (
            " Accuracy, balanced accuracy and F1 label rows at each version's own decision threshold: "
            f"this version's is {threshold} ({how})."
        )
    names = sorted(set(own) | set(card.champion_metrics_at_registration))
    text = "## Metrics\n\n" + intro
    if names:
        text += "\n\n" + markdown_table(
            ["metric", "this version", heading],
            [[m, _number(own.get(m)), _number(card.champion_metrics_at_registration.get(m))] for m in names],
        )
    compared = [d for d in card.decisions if d.get("champion_metrics")]
    if compared:
        latest = compared[-1]
        ours, theirs = latest["challenger_metrics"], latest["champion_metrics"]
        text += (
            f"\n\nAgainst the champion of the time, v{latest['champion_before']}, on the same rows "
            f"({_line(latest['evaluation'])}; decided {latest['decided_at']}):\n\n"
            + markdown_table(
                ["metric", "this version", f"champion v{latest['champion_before']}"],
                [[m, _number(ours.get(m)), _number(theirs.get(m))] for m in sorted(set(ours) | set(theirs))],
            )
        )
    return text


def _decisions(card: ModelCard) -> str:
    if not card.decisions:
        return "## Decision history\n\nNo decision yet."
    rows = [
        [
            _line(d.get("decided_at")),
            _line(d.get("verdict")),
            _line(d.get("mode")),
            _line(d.get("decided_by")),
            f"v{d['champion_before']}" if d.get("champion_before") else "none",
            _line(d.get("reason")),
        ]
        for d in card.decisions
    ]
    return "## Decision history\n\n" + markdown_table(
        ["when (UTC)", "verdict", "mode", "who", "champion before", "why"], rows
    )


def _optimised(card: ModelCard) -> str:
    if not card.optimised:
        return "## Optimised artifact\n\nNone checked for this version."
    return "## Optimised artifact\n\n" + markdown_table(
        ["check", "result"], [[k, _line(v)] for k, v in sorted(card.optimised.items())]
    )


def write_model_card(
    registry_settings: RegistrySettings,
    model_name: str,
    version: str,
    decision: PromotionDecision | None = None,
) -> str:
    """Append `decision` (if any) to the version's decision history, rebuild its card and log
    it on the version's run; returns the card's `runs:/` URI. At the first writing (registration)
    the champion of the time is recorded on the version."""
    registry = replace(model_registry(registry_settings), model_name=model_name)
    record = registry.version_record(version)
    run_id, tags = record["run_id"], record["tags"]
    if CHAMPION_AT_REGISTRATION_TAG not in tags:
        champion = registry.find_alias(registry_settings.champion_alias)
        at_registration = champion.version if champion and champion.version != str(version) else "none"
        if decision is not None:  # the decision's champion_before is the one of the time
            at_registration = decision.champion_version or "none"
        registry.tag_version(version, {CHAMPION_AT_REGISTRATION_TAG: at_registration})
    history = decision_history(registry, version, run_id, tags)
    if decision is not None:
        entry = decision_entry(decision)
        history = [d for d in history if not _same(d, entry)] + [entry]
        text = json.dumps({"decisions": history}, indent=2, default=str)
        registry.log_run_text(run_id, text, history_path(model_name, version))
    card = gather_model_card(registry, version, history)
    uri = registry.log_run_text(run_id, model_card_markdown(card), card_path(model_name, version))
    if tags.get(CARD_TAG) != uri:
        registry.tag_version(version, {CARD_TAG: uri})
    return uri


@task(name="write-model-card")
def publish_model_card(registry_settings: RegistrySettings, model_name: str, version: str) -> str:
    """The card of a newly registered version (no decision yet)."""
    return write_model_card(registry_settings, model_name, version)
