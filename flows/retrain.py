"""Retrain on the most recent labelled days, then let promotion decide: gate -> train -> promote."""

import time
from datetime import date
from typing import Any

from prefect import flow

from inferloop.core.errors import InferloopError
from inferloop.core.periods import DAILY, Partitioning, PartitionKey, parse_key
from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import TrainingSettings, load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.batch_inference import logical_partition
from inferloop.flows.promote import promote
from inferloop.flows.train import train
from inferloop.runtime.alert_events import RETRAIN_FAILED, RETRAIN_STARTED, RETRAIN_SUPPRESSED, emit_alert
from inferloop.runtime.locks import global_lock
from inferloop.tasks.model.registry import find_alias, model_registry
from inferloop.tasks.monitoring.retrain_policy import (
    RETRAIN_LOCK,
    RetrainDecision,
    ledger_since,
    load_ledger,
    record,
    retrain_verdict,
    storm_guard,
)
from inferloop.tasks.promotion.decision import promotion_window

NO_CHAMPION_YET = "no champion yet: a first model must clear the absolute gates"


@flow(name="retrain", log_prints=True)
def retrain(
    day: PartitionKey | None = None, force: bool = False, overrides: dict[str, Any] | None = None
) -> RetrainDecision:
    """Re-check the monitoring verdict for `day` under the retrain lock (one retrain at a time;
    a duplicated trigger finds the cap or cooldown and is recorded as suppressed), then train on
    the `train_window_days` labelled days known by `day` and run promotion on labels known by
    then: the new version becomes champion only if it beats the current one. `force` (a person
    in the UI) skips the monitoring verdict but not the storm guard. With no champion yet (the
    first model missed the absolute gates), it trains again each time the cooldown allows, as
    labels accumulate, until one clears them.

    Args:
        day: The day the degradation was seen (default: the logical date).
        force: Retrain without a confirmed degradation (the storm guard still applies).
        overrides: Settings to change for this run, by knob name, e.g. {"min_roc_auc": 0.7};
            see the README's Settings table.
    """
    settings = load_settings(**(overrides or {}))
    storage = lake_storage(settings.lake)
    spec = settings.dataset
    day = logical_partition(spec.partitioning, day)
    model_name, tracking_uri = settings.registry.model_name, settings.registry.tracking_uri
    with global_lock(RETRAIN_LOCK, timeout_seconds=3600):
        champion = find_alias(settings.registry, settings.registry.champion_alias)
        first = champion is None
        if force or first:  # no champion yet: keep training as labels arrive, every cooldown
            reason = "forced by a person" if force else NO_CHAMPION_YET
            decision = RetrainDecision(
                day.isoformat(), "retrain", [reason], champion_version=champion.version if champion else ""
            )
            since = ledger_since(settings.retrain, settings.training, day, spec.partitioning)
            ledger = load_ledger(storage, spec.name, since)
            decision = storm_guard(decision, ledger, settings.retrain, day, spec.partitioning)
        else:
            decision = retrain_verdict(storage, settings, day)
        if decision.action != "retrain":
            if decision.action == "suppressed":
                record(storage, spec.name, decision)
                alert_retrain_suppressed(decision, model_name, tracking_uri)
            print(f"No retrain for {day}: {decision.suppressed_because or 'no confirmed breach'}")
            return decision
        record(storage, spec.name, decision)  # counts for the guard before training starts
        alert_retrain(RETRAIN_STARTED, decision, model_name, tracking_uri, "retrain started")
        end = spec.partitioning.shift(day, -spec.label.delay_days)
        started = time.perf_counter()
        try:
            challenger = train(
                start=training_start(decision, settings.training, end, spec.partitioning),
                end=end,
                overrides=overrides,
            )
            # Without a champion, training itself decided (the bootstrap decision): nothing to compare with.
            promotion = (
                None
                if first
                else promote(
                    challenger_version=challenger.version,
                    as_of=end,
                    decided_by="retrain flow",
                    overrides=overrides,
                )
            )
        except InferloopError as error:  # e.g. a window with one class, a refused day: recorded, not fatal
            decision.compute_seconds = time.perf_counter() - started
            decision.outcome = f"not retrained: {error}"
            record(storage, spec.name, decision)
            alert_retrain(RETRAIN_FAILED, decision, model_name, tracking_uri, decision.outcome)
            print(f"Retrain for {day} did not produce a model: {error}")
            return decision
        except Exception as error:
            decision.outcome = f"failed: {error}"
            record(storage, spec.name, decision)
            alert_retrain(RETRAIN_FAILED, decision, model_name, tracking_uri, decision.outcome)
            raise
        decision.compute_seconds = time.perf_counter() - started
        decision.outcome = (
            f"v{challenger.version} {promotion.verdict}: {promotion.reason}"
            if promotion
            else first_champion_outcome(settings, challenger)
        )
        if promotion and not promotion.promoted:  # what the next challenger's holdout must not repeat
            decision.compared_partitions = compared_partitions(settings, challenger, end)
        record(storage, spec.name, decision)
    print(f"Retrained for {day} ({'; '.join(decision.reasons)}): {decision.outcome}")
    return decision


def compared_partitions(settings, challenger: ModelVersionRef, as_of: date) -> int:
    """How many partitions promotion compared `challenger` with the champion on (as of `as_of`);
    0 when the registry cannot say now (the cooldown alone guards the next retrain then: the
    decision must still be recorded with its outcome)."""
    try:
        champion = find_alias(settings.registry, settings.registry.champion_alias)
        start, end, _ = promotion_window(settings, challenger, as_of, champion)
    except InferloopError as error:
        print(
            f"Unknown which partitions v{challenger.version} was compared on ({error}): the cooldown decides"
        )
        return 0
    return max(0, settings.dataset.partitioning.apart(start, end) + 1)


def first_champion_outcome(settings, candidate: ModelVersionRef) -> str:
    champion = find_alias(settings.registry, settings.registry.champion_alias)
    if champion and champion.version == candidate.version:
        return f"v{candidate.version} became the first @{settings.registry.champion_alias}"
    reason = (
        model_registry(settings.registry).version_tags(candidate.version).get("inferloop.decision.reason")
    )
    return f"v{candidate.version} not promoted, still waiting for a first champion: {reason}"


def training_start(
    decision: RetrainDecision, training: TrainingSettings, end: date, partitioning: Partitioning = DAILY
) -> date:
    """The last `train_window_days` labelled partitions, cut at the degradation's onset when
    there is one (data from before a concept change teaches the old concept), but never fewer
    than the held-out partitions plus one to fit on."""
    start = partitioning.shift(end, -(training.train_window_days - 1))
    if decision.train_from:
        start = max(start, partitioning.floor(parse_key(decision.train_from)))
    return min(start, partitioning.shift(end, -training.holdout_days))


def alert_retrain(event: str, decision: RetrainDecision, model: str, tracking_uri: str, what: str) -> None:
    """Tell people a retrain started, was suppressed or failed, with the why."""
    emit_alert(
        event,
        model,
        f"{model}: {what} for {decision.day}",
        version=decision.champion_version,
        partition=decision.day,
        reasons=decision.reasons,
        tracking_uri=tracking_uri,
    )


def alert_retrain_suppressed(decision: RetrainDecision, model: str, tracking_uri: str) -> None:
    alert_retrain(
        RETRAIN_SUPPRESSED,
        decision,
        model,
        tracking_uri,
        f"retrain suppressed: {decision.suppressed_because}",
    )
