"""The loop on the embedded defaults: a concept change hits, monitoring notices, a retrain recovers."""

from datetime import timedelta

from prefect import flow

from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.replay import replay
from inferloop.tasks.data.feeds import write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.monitoring.replay import ReplaySummary


@flow(name="loop-demo", log_prints=True)
def loop_demo(days: int = 21, rows_per_day: int = 5_000, scenario: str = "concept_drift") -> ReplaySummary:
    """Generate `days` days of the synthetic feed (by default the fraud pattern changes halfway),
    train the first champion on the first `train_window_days`, then run the loop day by day:
    score, monitor, retrain and promote when the policy says so."""
    settings = load_settings()
    config = GeneratorConfig(scenario=scenario, days=days, rows_per_day=rows_per_day)
    written = write_synthetic_feed(lake_storage(settings), settings.dataset, config)
    first_scored = written[0] + timedelta(days=settings.train_window_days + settings.dataset.label.delay_days)
    return replay(start=first_scored, end=written[-1])
