"""Replay history day by day as if it were live: score, monitor, retrain and promote when triggered."""

import functools
from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa
from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from inferloop.core import catalog
from inferloop.core.errors import InferloopError
from inferloop.core.periods import PartitionKey
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.monitor import monitor
from inferloop.flows.train import train
from inferloop.runtime.alert_events import alerts_muted
from inferloop.tasks.data.feeds import MissingDataError, stored_partitions_in
from inferloop.tasks.gate.validation import BatchRefusedError
from inferloop.tasks.model.registry import find_alias, load_model, model_registry, resolve_alias
from inferloop.tasks.model.training import TrainingDataError
from inferloop.tasks.monitoring.change_detection import past_partitions_fixed
from inferloop.tasks.monitoring.comparison_report import save_comparison
from inferloop.tasks.monitoring.daily_report import load_history
from inferloop.tasks.monitoring.policy_comparison import (
    compare_policies,
    loop_effort,
    rejected_challengers,
    rejections_in_hindsight,
)
from inferloop.tasks.monitoring.replay import (
    ReplaySummary,
    loop_predictions,
    prequential_metrics,
    replay_day,
    show_second_looks,
    static_predictions,
    version_scores_of,
)
from inferloop.tasks.monitoring.retrain_policy import load_ledger
from inferloop.tasks.report_tables import comparison_over_time_table, comparison_table
from inferloop.tasks.reports import publish_markdown, publish_table
from inferloop.tasks.scoring.batch_scoring import score_partition


class FirstChampionRejected(InferloopError):
    """No model trained during the replay cleared the absolute gates: nothing to replay with."""


# What more labelled partitions can mend: too few rows or a single class, no labelled partition
# yet, a refused one in the window. Anything else (a suite not committed, the registry out of
# reach) would fail every attempt alike, so it stops the replay at once.
MORE_LABELS_MEND = (TrainingDataError, MissingDataError, BatchRefusedError)


def rejection_reason(settings, ref) -> str:
    tags = model_registry(settings.registry).version_tags(ref.version)
    return tags.get("inferloop.decision.reason", "see its decision in the MLflow UI")


def train_first_champion(settings, start: date, end: date, overrides: dict[str, Any] | None) -> date:
    """No champion yet: train one on the `train_window_days` labelled days known before
    `start`. While no candidate clears the absolute gates (or the window cannot be trained on),
    try again every `retrain_cooldown_days` as labels accumulate (the window grows). Returns
    the first partition the replay scores: the one a first champion exists for."""
    delay, partitioning = settings.dataset.label.delay_days, settings.dataset.partitioning
    first_start = partitioning.shift(start, -(delay + settings.training.train_window_days))
    stored = lake_storage(settings.lake).list_partitions(catalog.features_table(settings.dataset.name))
    first_start = max([first_start, *stored[:1]])  # not before the feed's first partition
    step = max(1, settings.retrain.retrain_cooldown_days)
    day, missed = start, []
    while day <= end:
        window_end = partitioning.shift(day, -(delay + 1))
        try:
            if window_end < first_start:
                raise MissingDataError(f"no labelled day of the feed is known before {day}")
            print(
                f"No @{settings.registry.champion_alias} yet: training one on {first_start}..{window_end}, "
                f"the labelled days known before {day} (INFERLOOP_TRAIN_WINDOW_DAYS from {start})"
            )
            candidate = train(start=first_start, end=window_end, overrides=overrides)
        except MORE_LABELS_MEND as error:
            missed.append(f"{first_start}..{window_end}: {error}")
        else:
            if find_alias(settings.registry, settings.registry.champion_alias) is not None:
                if day > start:
                    skipped = f"{start}..{partitioning.shift(day, -1)}"
                    print(f"{skipped} not scored, no model had cleared the gates yet")
                return day
            missed.append(
                f"v{candidate.version} trained on {first_start}..{window_end}: "
                f"{rejection_reason(settings, candidate)}"
            )
        day = partitioning.shift(day, step)
        print(f"No first champion yet ({missed[-1]}); trying again on {day} with more labels")
    raise FirstChampionRejected(f"No model cleared the gates by {end} ({attempts(missed)}): {advice(missed)}")


def attempts(missed: list[str], shown: int = 4) -> str:
    """The first attempt and the latest ones (a long replay tries dozens of times)."""
    if len(missed) <= shown:
        return " | ".join(missed)
    return " | ".join([missed[0], f"{len(missed) - shown} more", *missed[-(shown - 1) :]])


def advice(missed: list[str]) -> str:
    """What to do, by why the latest attempt failed: more labelled days do not help a label the
    features do not predict (every candidate below the ROC AUC floor)."""
    if "min_roc_auc:" in missed[-1]:
        return (
            "the candidates rank the label little better than chance: check that the features can "
            "predict it (the spec's label and features), or lower INFERLOOP_MIN_ROC_AUC if a weak "
            "model is still worth serving"
        )
    return "start the replay later (more labelled days before --from) or widen INFERLOOP_TRAIN_WINDOW_DAYS"


@flow(name="replay", log_prints=True)
def replay(start: PartitionKey, end: PartitionKey, overrides: dict[str, Any] | None = None) -> ReplaySummary:
    """Each partition from `start` to `end`: gate and score it with the champion of the moment, then
    monitor (labels arrive after the spec's delay) and retrain + promote when the policy says so.
    Without a champion, the first one is trained on the `train_window_days` labelled days before
    `start`. Saves the day-by-day table to `replay/<dataset>/<start>_<end>.parquet`; returns it
    with the loop's prequential metrics beside those of the first champion never replaced, and
    the loop compared on the same rows with the first model kept and with periodic retraining
    every k partitions (`baseline_every`), saved next to the table as
    `<start>_<end>_comparison.parquet|json|png` and published as artifacts with the verdict.

    Args:
        start: First partition to score (any day in it, for a weekly or monthly feed).
        end: Last partition to score.
        overrides: Settings to change for this run, by knob name, e.g. {"min_roc_auc": 0.7};
            see the README's Settings table.
    """
    settings = load_settings(**(overrides or {}))
    spec = settings.dataset
    storage = lake_storage(settings.lake)
    start, end = spec.partitioning.floor(start), spec.partitioning.floor(end)
    stored = set(
        stored_partitions_in(storage, spec, start, end, "replay days the lake holds, or import them")
    )
    first_day = start
    if find_alias(settings.registry, settings.registry.champion_alias) is None:
        first_day = train_first_champion(settings, start, end, overrides)
    first = resolve_alias(settings.registry, settings.registry.champion_alias)
    models = {first.version: load_model(settings.registry, first)}
    default = settings.scoring.decision_threshold
    thresholds = {first.version: first.threshold(default)}  # each version labels at its own
    rows, judged = [], {}
    with alerts_muted("a replay re-enacts history: its incidents are simulated"), past_partitions_fixed():
        for day in [key for key in spec.partitioning.keys(first_day, end) if key in stored]:  # gaps: no rows
            champion = resolve_alias(settings.registry, settings.registry.champion_alias)
            if champion.version not in models:
                models[champion.version] = load_model(settings.registry, champion)
                thresholds[champion.version] = champion.threshold(default)
            try:
                manifest = score_partition.fn(
                    storage,
                    spec,
                    models[champion.version],
                    champion,
                    day,
                    str(flow_run.id),
                    settings.scoring,
                    settings.gate,
                )
            except BatchRefusedError as refusal:
                print(refusal)
                manifest = None
            decision = monitor.fn(day=day, retrain_inline=True, chart=False, overrides=overrides)
            report = load_history(storage, spec.name, day, day)[-1]
            rows.append(replay_day(day, champion.version, manifest, report, decision))
            if report.hindsight and report.hindsight.verdict != "pending":
                judged[report.hindsight.champion_version] = report.hindsight.verdict
    loop = loop_predictions(storage, spec, first.name, rows, thresholds)
    static = static_predictions(storage, spec, models[first.version], loop, thresholds[first.version])
    ledger = [d for d in load_ledger(storage, spec.name, start) if d.day <= end.isoformat()]
    show_second_looks(rows, ledger)
    rejections = rejections_in_hindsight(
        loop,
        rejected_challengers(ledger),
        functools.partial(version_scores_of, storage, settings),
        settings.promotion.min_promotion_rows,
        settings.monitoring.monitor_metric,
        default,
        settings.training.min_class_rows,
    )
    effort = loop_effort(ledger, judged, rejections)
    comparison = compare_policies(
        storage,
        spec,
        rows,
        loop,
        static,
        models[first.version],
        effort,
        baseline_every=settings.replay.baselines_for(spec.partition),
        train_window_days=settings.training.train_window_days,
        threshold=default,  # the periodic baselines': a plain cron does not fit a threshold
        monitor_metric=settings.monitoring.monitor_metric,
        training=settings.training,
    )
    summary = ReplaySummary(
        dataset=spec.name,
        start=start.isoformat(),
        end=end.isoformat(),
        days=rows,
        loop=prequential_metrics(loop, default),
        static=prequential_metrics(static, default),
        retrains=effort.retrains,
        promotions=effort.promotions,
        comparison=save_comparison(storage, comparison),
    )
    table = catalog.replay_table(spec.name, start, end)
    frame = pd.DataFrame([vars(r) for r in rows]).assign(drifted=lambda f: f["drifted"].map(", ".join))
    storage.write_table(table, pa.Table.from_pandas(frame, preserve_index=False))
    summary.table_uri = storage.uri(table)
    create_table_artifact(
        key=f"replay-{spec.name}".replace("_", "-"),
        table=frame.to_dict("records"),
        description=f"Replay {start}..{end}: loop {summary.loop} vs static {summary.static}",
    )
    publish_table(f"replay-comparison-{spec.name}", comparison_table(comparison))
    publish_markdown(
        f"replay-comparison-{spec.name}-over-time",
        comparison_over_time_table(comparison),
        description=f"Replay {start}..{end}: the loop against its baselines, over time",
    )
    print(comparison.verdict)
    return summary
