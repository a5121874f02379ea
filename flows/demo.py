"""The loop on the embedded defaults: a concept change hits, monitoring notices, a retrain recovers."""

from datetime import timedelta
from typing import Any

from prefect import flow

from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.replay import replay
from inferloop.tasks.data.feeds import write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.monitoring.replay import ReplaySummary


@flow(name="loop-demo", log_prints=True)
def loop_demo(
    days: int = 21,
    rows_per_day: int = 5_000,
    scenario: str = "concept_drift",
    overrides: dict[str, Any] | None = None,
) -> ReplaySummary:
    """Generate `days` days of the synthetic feed (by default the fraud pattern changes halfway),
    train the first champion on the first `train_window_days`, then run the loop day by day:
    score, monitor, retrain and promote when the policy says so.

    Args:
        days: Days of the synthetic feed to generate.
        rows_per_day: Rows of each day.
        scenario: Which change the feed goes through (e.g. concept_drift).
        overrides: Settings to change for this run, by knob name, e.g. {"min_roc_auc": 0.7};
            see the README's Settings table.
    """
    settings = load_settings(**(overrides or {}))
    config = GeneratorConfig(scenario=scenario, days=days, rows_per_day=rows_per_day)
    written = write_synthetic_feed(lake_storage(settings.lake), settings.dataset, config)
    first_scored = written[0] + timedelta(
        days=settings.training.train_window_days + settings.dataset.label.delay_days
    )
    return replay(start=first_scored, end=written[-1], overrides=overrides)
