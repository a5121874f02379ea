"""When monitoring should start a retrain, and the storm guard that keeps retrains rare.

One decision function serves both paths (the monitor calling retrain directly, and the retrain
flow started by the `inferloop.model.degraded` event): a breach must last `confirm_days`
consecutive partitions (days for a daily feed; small partitions' drift verdicts rest on
overlapping pools of recent partitions: tasks/monitoring/drift_window.py says what that
confirms); no retrain while the data gate refuses the
feed (a broken feed is an incident, not a reason to retrain); a cooldown after each retrain
and a daily cap. Every
retrain and every suppressed trigger is kept in the ledger with its reason.
"""

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Literal

from inferloop.core import catalog
from inferloop.core.periods import DAILY, Partitioning, parse_key
from inferloop.core.settings import MonitoringSettings, RetrainSettings, Settings, TrainingSettings
from inferloop.core.storage import Storage
from inferloop.tasks.monitoring.daily_report import MonitoringReport, load_history

Action = Literal["retrain", "suppressed", "none"]
NO_MODEL = ("not retrained", "failed")  # outcomes of a retrain that produced no model
RETRAIN_LOCK = "inferloop-retrain"


@dataclass
class RetrainDecision:
    day: str
    action: Action
    reasons: list[str] = field(default_factory=list)
    suppressed_because: str = ""
    champion_version: str = ""
    train_from: str = ""  # first event day of the degradation: a retrain learns what came after
    decided_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="microseconds"))
    outcome: str = ""  # filled in by the retrain flow: promoted, rejected or failed
    compute_seconds: float = 0.0  # the retrain flow's training and promotion
    compared_partitions: int = 0  # a rejected challenger's: the partitions it lost on

    def to_dict(self) -> dict:
        return asdict(self)


DECISION_FIELDS = {f.name for f in fields(RetrainDecision)}


def known_fields(raw: dict) -> dict:
    """A recorded decision's fields this version knows (a later version may have added some)."""
    return {k: v for k, v in raw.items() if k in DECISION_FIELDS}


def decide_retrain(
    history: list[MonitoringReport],
    ledger: list[RetrainDecision],
    policy: RetrainSettings,
    monitoring: MonitoringSettings,
    day: date,
    min_rows_after_change: int = 0,
    partitioning: Partitioning = DAILY,
) -> RetrainDecision:
    """The verdict for `day` from the reports of the days up to it and past retrain decisions.
    A retrain learns from the detected change on (data from before it teaches the old concept)
    when at least `min_rows_after_change` labelled rows came after it; else from its whole window."""
    latest = history[-1] if history and history[-1].day == day.isoformat() else None
    champion = latest.model_version if latest else ""
    if latest is None or not latest.breaches:
        return RetrainDecision(day.isoformat(), "none", champion_version=champion)
    wanted = [partitioning.shift(day, -i).isoformat() for i in range(policy.confirm_days)]
    by_day = {r.day: r for r in history}
    confirmed = [by_day[d] for d in wanted if d in by_day and by_day[d].breaches]
    confirmed = [r for r in confirmed if r.model_version == champion]
    if len(confirmed) < policy.confirm_days:
        return RetrainDecision(
            day.isoformat(),
            "none",
            [f"breach on {len(confirmed)} of {policy.confirm_days} consecutive days: waiting to confirm"],
            champion_version=champion,
        )
    decision = RetrainDecision(day.isoformat(), "retrain", latest.breaches, champion_version=champion)
    if monitoring.performance_trigger == "drop":
        decision.train_from = degradation_onset(history, monitoring)
    else:
        decision.train_from = change_point(latest, min_rows_after_change)
    if refused := [r.day for r in history if r.day in wanted and r.gate_refused]:
        decision.action = "suppressed"
        decision.suppressed_because = (
            f"the data gate refused the feed on {', '.join(refused)}: fix the feed first (a broken feed "
            "is an incident, not a reason to retrain)"
        )
        return decision
    return storm_guard(decision, ledger, policy, day, partitioning)


def breach_open(decision: RetrainDecision) -> bool | None:
    """Whether the champion's breach is open after `decision`: True from a confirmed breach
    (retrain or suppressed), False on a day without any breach, None while one is still
    confirming (it stays as it was)."""
    if decision.action != "none":
        return True
    return None if decision.reasons else False


def change_point(report: MonitoringReport, min_rows: int) -> str:
    """The event day of the latest detected rise in the champion's losses, when enough labelled
    rows followed it to train and hold out on ("" otherwise: keep the whole window)."""
    changes = [c for c in report.changes if c.changed and c.rows_after >= min_rows]
    return max((c.changed_at_event_day for c in changes), default="")


def degradation_onset(history: list[MonitoringReport], monitoring: MonitoringSettings) -> str:
    """The earliest event day of the latest unbroken run of days whose own metric fell more
    than the tolerated drop below validation ("" when the breach is drift alone)."""
    onset = ""
    for report in reversed(history):
        day = report.day_performance
        if day is None or report.validation_metric is None or monitoring.monitor_metric not in day.metrics:
            break
        if report.validation_metric - day.metrics[monitoring.monitor_metric] <= monitoring.max_metric_drop:
            break
        onset = day.first_event_day
    return onset


def storm_guard(
    decision: RetrainDecision,
    ledger: list[RetrainDecision],
    policy: RetrainSettings,
    day: date,
    partitioning: Partitioning = DAILY,
) -> RetrainDecision:
    """Suppress a retrain that would break the cooldown or the daily cap, or that would retry a
    rejected challenger before half the partitions it was compared on are behind it.

    Only finished retrains count (their outcome is recorded, a failure included): one without
    an outcome is either running, and then its run holds the retrain lock under which this
    verdict is taken again before training, or it was killed and never trained anything."""
    retrains = [d for d in ledger if d.action == "retrain" and d.outcome]
    if sum(d.day == day.isoformat() for d in retrains) >= policy.max_retrains_per_day:
        decision.action = "suppressed"
        decision.suppressed_because = (
            f"{policy.max_retrains_per_day} retrain(s) already on {day} (INFERLOOP_MAX_RETRAINS_PER_DAY)"
        )
    elif recent := [
        d
        for d in retrains
        if 0 < abs(partitioning.apart(parse_key(d.day), day)) < policy.retrain_cooldown_days
    ]:
        last = max(parse_key(d.day) for d in recent)  # a backfill may look at older days
        decision.action = "suppressed"
        decision.suppressed_because = (
            f"cooldown: a retrain on {last}, next allowed on "
            f"{partitioning.shift(last, policy.retrain_cooldown_days)} (INFERLOOP_RETRAIN_COOLDOWN_DAYS)"
        )
    elif retry := retry_too_soon(decision, retrains, day, partitioning):  # where it outlasts the cooldown
        decision.action, decision.suppressed_because = "suppressed", retry
    return decision


def retry_too_soon(
    decision: RetrainDecision, retrains: list[RetrainDecision], day: date, partitioning: Partitioning
) -> str:
    """Why a retrain now would retry the latest rejected challenger on mostly the same evidence
    ("" when it would not). A challenger is compared on its newest held-out partitions; one
    trained a few partitions later holds out nearly the same ones, against the same champion, so
    retrying every cooldown repeats one test until noise passes it (on an hourly feed a
    persisting breach retrained every 3 hours, each challenger compared on 100 partitions).
    The next attempt waits until more than half of what it will be compared on is new. Where
    partitions are large the holdout is short and the cooldown decides."""
    # A retrain that produced no model leaves the last comparison standing.
    judged = [d for d in retrains if parse_key(d.day) < day and not d.outcome.startswith(NO_MODEL)]
    if not judged:
        return ""
    last = max(judged, key=lambda d: parse_key(d.day))
    if not last.compared_partitions or last.champion_version != decision.champion_version:
        return ""
    wait = -(-last.compared_partitions // 2)  # half, rounded up
    if partitioning.apart(parse_key(last.day), day) >= wait:
        return ""
    return (
        f"the challenger of {last.day} was rejected on {last.compared_partitions} partitions; a "
        f"retrain before {partitioning.shift(parse_key(last.day), wait)} would be compared on mostly "
        "the same ones (next allowed then; a holdout holds INFERLOOP_MIN_HOLDOUT_ROWS rows)"
    )


def load_ledger(storage: Storage, dataset: str, since: date) -> list[RetrainDecision]:
    """Retrain and suppressed decisions from `since` on, oldest first."""
    decisions = []
    for day in storage.list_partitions(catalog.retrain_decisions(dataset)):
        if day >= since:
            raw = storage.read_json(catalog.retrain_decisions_file(dataset, day))
            decisions += [RetrainDecision(**known_fields(d)) for d in raw["decisions"]]
    return decisions


def record(storage: Storage, dataset: str, decision: RetrainDecision) -> None:
    """Append (or update, matched on decided_at) a decision in its day's ledger file.
    Callers hold the retrain lock, so read-modify-write does not race."""
    path = catalog.retrain_decisions_file(dataset, parse_key(decision.day))
    existing = storage.read_json(path)["decisions"] if storage.exists(path) else []
    kept = [d for d in existing if d["decided_at"] != decision.decided_at]
    storage.write_json(path, {"decisions": [*kept, decision.to_dict()]})


def ledger_since(
    policy: RetrainSettings, training: TrainingSettings, day: date, partitioning: Partitioning = DAILY
) -> date:
    """How far back the guard needs to look: the cooldown, and half the partitions a rejected
    challenger can have been compared on (a holdout holds `min_holdout_rows`, a row or more
    each, and at least `holdout_days` partitions; a feed with gaps can span more)."""
    holdout = max(training.min_holdout_rows, training.holdout_days)
    return partitioning.shift(day, -max(policy.retrain_cooldown_days, 1, -(-holdout // 2)))


def retrain_verdict(storage: Storage, settings: Settings, day: date) -> RetrainDecision:
    """The shared decision: the saved reports up to `day` against the ledger."""
    dataset, partitioning = settings.dataset.name, settings.dataset.partitioning
    lookback = max(
        settings.retrain.confirm_days, settings.training.train_window_days
    )  # the onset may be that old
    history = load_history(storage, dataset, partitioning.shift(day, -lookback), day)
    ledger = load_ledger(
        storage,
        dataset,
        ledger_since(settings.retrain, settings.training, day, partitioning),
    )
    # enough after the change to fit on and to hold out `min_holdout_rows` for promotion
    min_rows = 2 * settings.training.min_holdout_rows
    return decide_retrain(history, ledger, settings.retrain, settings.monitoring, day, min_rows, partitioning)
