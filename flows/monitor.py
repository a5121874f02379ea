"""Monitor the champion on a day's scored partition and the labels that arrived; act on breaches."""

from typing import Any

from prefect import flow
from prefect.events import emit_event

from inferloop.core import catalog
from inferloop.core.errors import InferloopError
from inferloop.core.periods import PartitionKey
from inferloop.core.registry import ModelVersionRef, RegistryError
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.batch_inference import logical_partition
from inferloop.flows.promote import promote, rollback
from inferloop.flows.retrain import alert_retrain_suppressed, retrain
from inferloop.runtime.alert_events import BREACH_CONFIRMED, emit_alert
from inferloop.runtime.locks import global_lock
from inferloop.tasks.data.feeds import MissingDataError
from inferloop.tasks.gate.validation import BatchRefusedError
from inferloop.tasks.model.registry import find_alias, record_breach_state
from inferloop.tasks.monitoring.daily_report import MonitoringReport, monitor_day
from inferloop.tasks.monitoring.history_chart import save_history_chart
from inferloop.tasks.monitoring.retrain_policy import (
    RETRAIN_LOCK,
    RetrainDecision,
    breach_open,
    record,
    retrain_verdict,
)
from inferloop.tasks.promotion.second_look import DECIDED_BY, record_second_look, second_look_due
from inferloop.tasks.report_tables import online_summary
from inferloop.tasks.reports import publish_monitoring_report

DEGRADED_EVENT = "inferloop.model.degraded"
SECOND_LOOK_LOCK_SECONDS = 5


@flow(name="monitor", log_prints=True)
def monitor(
    day: PartitionKey | None = None,
    retrain_inline: bool = False,
    chart: bool = True,
    overrides: dict[str, Any] | None = None,
) -> RetrainDecision:
    """Measure drift of `day` (default: the logical date) and the champion's performance on the
    labels that have arrived; save the report (lake + MLflow) and publish it. When a breach is
    confirmed and the storm guard allows it, emit `inferloop.model.degraded` (the `retrain`
    deployment's trigger) or, with `retrain_inline` (local CLI runs), run retrain directly
    instead (not both: a server's automation would start a second, suppressed, retrain).
    `chart`: also draw the recent history as a PNG next to the report (replays skip it).
    A champion whose promotion did clearly worse in hindsight than the version it replaced is
    rolled back first (`hindsight_action`), and nothing is retrained that day. A challenger
    rejected by checks on its compared rows alone gets its second look once enough labelled
    rows follow it (`second_look`; tasks/promotion/second_look.py); if it is promoted, nothing
    is retrained that day.

    Args:
        day: Day whose features and arrived labels are checked (default: the logical date).
        retrain_inline: Retrain in this run instead of emitting inferloop.model.degraded.
        chart: Draw the monitoring history chart next to the report.
        overrides: Settings to change for this run, by knob name, e.g. {"min_roc_auc": 0.7};
            see the README's Settings table.
    """
    settings = load_settings(**(overrides or {}))
    storage = lake_storage(settings.lake)
    day = logical_partition(settings.dataset.partitioning, day)
    champion = find_alias(settings.registry, settings.registry.champion_alias)
    if champion is None:  # nothing scored, nothing to monitor: the loop keeps training instead
        print(
            f"{day}: no @{settings.registry.champion_alias} yet; training a candidate if the cooldown allows"
        )
        return retrain(day=day, overrides=overrides)
    report = monitor_day(storage, settings, champion, day)
    if failed_in_hindsight(report, settings.promotion.hindsight_action) and restores_replaced(
        find_alias(settings.registry, settings.registry.previous_champion_alias), report
    ):
        rolled_back = rollback(decided_by=f"hindsight: {report.hindsight.describe()}", overrides=overrides)
        print(f"Rolled back to v{rolled_back.challenger_version}: {report.hindsight.describe()}")
        return RetrainDecision(day.isoformat(), "none", [f"rolled back: {report.hindsight.describe()}"])
    if (promoted := second_look(storage, settings, champion, day, overrides)) is not None:
        return promoted  # a new champion: its own monitoring starts with the next partition
    decision = retrain_verdict(storage, settings, day)
    # Kept on the champion's version for inferloop serve's degraded-model policy.
    if (breached := breach_open(decision)) is not None:
        try:
            change = record_breach_state(
                settings.registry, champion, day.isoformat(), breached, decision.reasons
            )
        except RegistryError as error:  # the online policy waits for the next day; the retrain does not
            change = f"not recorded ({error})"
        if change:
            print(f"{champion.name} v{champion.version}: breach {change}")
    if decision.action == "suppressed":
        with global_lock(RETRAIN_LOCK):
            record(storage, settings.dataset.name, decision)
    if decision.action in ("retrain", "suppressed"):  # both follow a breach confirmed over confirm_days
        emit_alert(
            BREACH_CONFIRMED,
            champion.name,
            f"{champion.name} v{champion.version}: drift or performance breach confirmed on {day}",
            version=champion.version,
            partition=day.isoformat(),
            reasons=decision.reasons,
            tracking_uri=settings.registry.tracking_uri,
        )
    if decision.action == "suppressed":
        alert_retrain_suppressed(decision, champion.name, settings.registry.tracking_uri)
    chart_uri = save_history_chart(storage, settings, day) if chart else None
    report_uri = storage.uri(catalog.monitoring_day(report.dataset, day))
    publish_monitoring_report(report, decision, report_uri, chart_uri)
    print(summary(report, decision))
    if decision.action == "retrain" and retrain_inline:
        return retrain(day=day, overrides=overrides)
    if decision.action == "retrain":  # the retrain deployment's trigger (prefect.yaml) acts on it
        emit_event(
            event=DEGRADED_EVENT,
            resource={
                "prefect.resource.id": f"inferloop.model.{champion.name}",
                "prefect.resource.name": champion.name,
            },
            payload={
                "day": day.isoformat(),
                "reasons": decision.reasons,
                "champion_version": champion.version,
            },
        )
    return decision


def second_look(
    storage, settings, champion: ModelVersionRef, day, overrides: dict[str, Any] | None
) -> RetrainDecision | None:
    """Take `@challenger`'s second look if one is due (`second_look_due`), under the retrain lock
    (a running retrain would replace the challenger or the champion: the look waits a day), and
    record it on the version and in the retrain ledger (a promotion the replay counts). Returns
    that ledger entry when the look made the challenger champion, else None. Not in approve
    mode: people decide there, and a monitor must not wait an hour for one."""
    if not settings.promotion.second_look or settings.promotion.promotion_mode != "auto":
        return None
    try:
        # Most days none is due: asked first without the lock, whose slot costs ~0.5 s a partition.
        if second_look_due(storage, settings, champion, day) is None:
            return None
        with global_lock(RETRAIN_LOCK, timeout_seconds=SECOND_LOOK_LOCK_SECONDS):
            if (look := second_look_due(storage, settings, champion, day)) is None:
                return None  # a retrain replaced the challenger (or the champion) meanwhile
            try:
                decision = promote(
                    challenger_version=look.version,
                    start=look.start,
                    end=look.end,
                    decided_by=DECIDED_BY,
                    overrides=overrides,
                )
                look.verdict, look.reason = decision.verdict, decision.reason
            except (BatchRefusedError, MissingDataError) as error:  # the same rows would fail again
                look.verdict, look.reason = "not judged", str(error)
            record_second_look(settings, look)
            looked = RetrainDecision(
                day.isoformat(),
                "none",
                [look.describe()],
                champion_version=champion.version,
                outcome=look.ledger_outcome(),
            )
            record(storage, settings.dataset.name, looked)
    except InferloopError as error:  # the lock held by a retrain, the registry or lake unreachable
        print(f"{day}: the second look at @{settings.registry.challenger_alias} waits: {error}")
        return None
    print(looked.reasons[0])
    return looked if look.verdict == "promote" else None


def failed_in_hindsight(report: MonitoringReport, action: str) -> bool:
    """The champion's promotion did clearly worse than the version it replaced would have, and
    `hindsight_action` says to roll such a promotion back."""
    return action == "rollback" and report.hindsight is not None and report.hindsight.verdict == "worse"


def restores_replaced(previous: ModelVersionRef | None, report: MonitoringReport) -> bool:
    """A rollback would restore the version the failed promotion replaced (not another one)."""
    return previous is not None and previous.version == report.hindsight.replaced_version


def summary(report: MonitoringReport, decision: RetrainDecision) -> str:
    rolling = report.rolling_performance
    performance = (
        f"{rolling.labelled_rows} labelled rows, "
        + ", ".join(f"{k} {v:.3f}" for k, v in rolling.metrics.items())
        if rolling
        else "no labelled predictions yet"
    )
    return (
        f"{report.day} {report.model_name} v{report.model_version}: drift {report.drift_verdict} "
        f"(flagged: {', '.join(report.drifted_features) or 'none'}); {performance}; "
        f"{online_summary(report.online) + ' ' if report.online else ''}"
        f"retrain: {decision.action} {decision.suppressed_because}".rstrip()
    )
