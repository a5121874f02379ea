"""Train a model on a labelled window and register it in MLflow."""

from dataclasses import replace
from datetime import date
from typing import Any

import pandas as pd
from prefect import flow

from inferloop.core import catalog
from inferloop.core.periods import PartitionKey
from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.feeds import latest_labelled_day
from inferloop.tasks.gate.partition_gate import gate_training_window
from inferloop.tasks.gate.validation import BatchRefusedError
from inferloop.tasks.model.comparison import rarer_class_rows
from inferloop.tasks.model.model_card import publish_model_card
from inferloop.tasks.model.registry import find_alias, log_and_register, save_holdout_predictions
from inferloop.tasks.model.training import check_training_rows, earlier_partitions_needed, fit_model
from inferloop.tasks.promotion.decision import bootstrap_decision
from inferloop.tasks.promotion.record import record_decision
from inferloop.tasks.reports import (
    publish_promotion_report,
    publish_training_report,
    publish_validation_report,
)


def gated_window(storage, settings, start: date, end: date):
    """The window's rows that pass the training gate, and the gate's reports (published)."""
    try:
        return gate_training_window(storage, settings.dataset, start, end, settings.gate)
    except BatchRefusedError as refusal:
        publish_validation_report(refusal.report)
        raise


def widened_to_evidence(storage, settings, frame: pd.DataFrame, reports: list, start: date, end: date):
    """The window with earlier partitions taken back, as far as the feed goes, until it holds
    `train_window_rows` (at least `min_train_rows`) and a holdout of `min_holdout_rows` that
    promotion can decide on. A window cut at a detected change, or a few small partitions, holds
    too few rows otherwise: a model that varies from fit to fit, and challengers refused for want
    of evidence."""
    spec = settings.dataset
    stored = storage.list_partitions(catalog.features_table(spec.name))
    asked = start
    while earlier := [key for key in stored if key < start]:
        missing = earlier_partitions_needed(frame, spec, settings.training)
        if not missing:
            break
        first = earlier[-min(missing, len(earlier))]
        try:
            more, more_reports = gated_window(storage, settings, first, spec.partitioning.shift(start, -1))
        except BatchRefusedError:
            break  # history before a refused partition is not taken back
        frame, reports, start = pd.concat([more, frame], ignore_index=True), more_reports + reports, first
    if start < asked:
        print(
            f"{asked}..{end} holds too few labelled rows to fit and hold out "
            f"(INFERLOOP_TRAIN_WINDOW_ROWS={settings.training.train_window_rows}, "
            f"INFERLOOP_MIN_HOLDOUT_ROWS={settings.training.min_holdout_rows}); "
            f"training on {start}..{end} ({len(frame)} rows)"
        )
    return frame, reports, start


@flow(name="train", log_prints=True)
def train(
    start: PartitionKey | None = None,
    end: PartitionKey | None = None,
    overrides: dict[str, Any] | None = None,
) -> ModelVersionRef:
    """Gate `start`..`end` (default: the latest `train_window_days` labelled days), fit on the
    rows that pass, log to MLflow with lineage and the gate's reports, and register a version as
    `challenger`; with no champion yet, it becomes `champion` if it clears the absolute gates
    (a recorded bootstrap decision). A refused day means no model.

    Args:
        start: First partition of the training window, any day in it (default: end -
            train_window_days + 1 partitions).
        end: Last partition of the training window (default: the latest one with labels).
        overrides: Settings to change for this run, by knob name, e.g. {"min_roc_auc": 0.7};
            see the README's Settings table.
    """
    settings = load_settings(**(overrides or {}))
    spec = settings.dataset
    storage = lake_storage(settings.lake)
    partitioning = spec.partitioning
    end = partitioning.floor(end) if end else latest_labelled_day(storage, spec)
    full_start = partitioning.shift(end, -(settings.training.train_window_days - 1))
    if start is None:  # the latest train_window_days labelled partitions, or as many as the feed has
        stored = storage.list_partitions(catalog.features_table(spec.name))
        start = max([full_start, *stored[:1]])
    start = partitioning.floor(start)
    frame, reports = gated_window(storage, settings, start, end)
    frame, reports, start = widened_to_evidence(storage, settings, frame, reports, start, end)
    check_training_rows(frame, f"{start}..{end}", settings.training.min_train_rows)
    for report in reports:
        publish_validation_report(report)
    result = fit_model(frame, spec, settings.training, settings.scoring, settings.monitoring.monitor_metric)
    features_uri = storage.uri(catalog.features_table(spec.name))
    ref = log_and_register(settings, result, frame, start, end, features_uri, reports)
    save_holdout_predictions(storage, spec, ref, result)
    publish_model_card(settings.registry, ref.name, ref.version)
    if find_alias(settings.registry, settings.registry.champion_alias) is None:
        first = bootstrap_decision(settings, ref, result.metrics, rarer_class_rows(result.holdout_target))
        decision = record_decision(settings.registry, first)
        publish_promotion_report(decision)
        if decision.promoted:
            ref = replace(ref, alias=settings.registry.champion_alias)
    publish_training_report(ref, result.metrics, f"{start}..{end}", result.train_rows, result.holdout_rows)
    print(
        f"Registered {ref.name} version {ref.version} as @{ref.alias}: "
        f"holdout ROC AUC {result.metrics['roc_auc']:.4f}"
    )
    return ref
