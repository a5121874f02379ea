"""Train a model on a labelled window and register it in MLflow."""

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pandas as pd
from prefect import flow

from inferloop.core import catalog
from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.feeds import latest_labelled_day
from inferloop.tasks.gate.partition_gate import gate_training_window
from inferloop.tasks.gate.validation import BatchRefusedError
from inferloop.tasks.model.model_card import publish_model_card
from inferloop.tasks.model.registry import find_alias, log_and_register, save_holdout_predictions
from inferloop.tasks.model.training import check_training_rows, fit_model, newest_days_holding
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


@flow(name="train", log_prints=True)
def train(
    start: date | None = None, end: date | None = None, overrides: dict[str, Any] | None = None
) -> ModelVersionRef:
    """Gate `start`..`end` (default: the latest `train_window_days` labelled days), fit on the
    rows that pass, log to MLflow with lineage and the gate's reports, and register a version as
    `challenger`; with no champion yet, it becomes `champion` if it clears the absolute gates
    (a recorded bootstrap decision). A refused day means no model.

    Args:
        start: First day of the training window (default: end - train_window_days + 1).
        end: Last day of the training window (default: the latest day with labels).
        overrides: Settings to change for this run, by knob name, e.g. {"min_roc_auc": 0.7};
            see the README's Settings table.
    """
    settings = load_settings(**(overrides or {}))
    spec = settings.dataset
    storage = lake_storage(settings.lake)
    end = end or latest_labelled_day(storage, spec)
    if start is None:  # the latest train_window_days labelled days, or as many as the feed has
        start = end - timedelta(days=settings.training.train_window_days - 1)
        stored = storage.list_partitions(catalog.features_table(spec.name))
        start = max([start, *stored[:1]])
    full_start = end - timedelta(days=settings.training.train_window_days - 1)
    frame, reports = gated_window(storage, settings, start, end)
    min_rows = settings.training.min_train_rows
    if len(frame) < min_rows and start > full_start:  # cut at a change: too few rows since
        frame, reports = gated_window(storage, settings, full_start, end)
        frame = newest_days_holding(frame, spec, min_rows)
        start = pd.to_datetime(frame[spec.time_column]).min().date()
        reports = [r for r in reports if r.partition_date >= start.isoformat()]
        print(f"Too few labelled rows since the change; training on {start}..{end} ({len(frame)} rows)")
    check_training_rows(frame, f"{start}..{end}", min_rows)
    for report in reports:
        publish_validation_report(report)
    result = fit_model(frame, spec, settings.training, settings.scoring.decision_threshold)
    features_uri = storage.uri(catalog.features_table(spec.name))
    ref = log_and_register(settings, result, frame, start, end, features_uri, reports)
    save_holdout_predictions(storage, spec, ref, result)
    publish_model_card(settings.registry, ref.name, ref.version)
    if find_alias(settings.registry, settings.registry.champion_alias) is None:
        decision = record_decision(settings.registry, bootstrap_decision(settings, ref, result.metrics))
        publish_promotion_report(decision)
        if decision.promoted:
            ref = replace(ref, alias=settings.registry.champion_alias)
    publish_training_report(ref, result.metrics, f"{start}..{end}", result.train_rows, result.holdout_rows)
    print(
        f"Registered {ref.name} version {ref.version} as @{ref.alias}: "
        f"holdout ROC AUC {result.metrics['roc_auc']:.4f}"
    )
    return ref
