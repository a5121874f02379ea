"""The loop on the embedded defaults: generate a feed, train, then score day by day."""

from dataclasses import dataclass

from prefect import flow

from flows.batch_inference import batch_inference
from flows.train import train
from inferloop.settings import load_settings
from inferloop.storage import lake_storage
from inferloop.synthetic import GeneratorConfig
from tasks.data import write_synthetic_feed
from tasks.registry import ModelVersionRef, run_metric
from tasks.scoring import ScoringManifest


@dataclass
class DemoSummary:
    champion: ModelVersionRef
    champion_roc_auc: float
    manifests: list[ScoringManifest]
    predictions_uri: str
    tracking_uri: str


@flow(name="loop-demo", log_prints=True)
def loop_demo(days: int = 14, rows_per_day: int = 5_000, scenario: str = "stable") -> DemoSummary:
    """Generate `days` days, train on the first half, score the second half with @champion."""
    settings = load_settings()
    storage = lake_storage(settings)
    config = GeneratorConfig(scenario=scenario, days=days, rows_per_day=rows_per_day)
    written = write_synthetic_feed(storage, settings.dataset, config)
    half = days // 2
    train(start=written[0], end=written[half - 1])
    manifests = batch_inference(partition_date=written[half], end_date=written[-1])
    champion = manifests[0]
    ref = ModelVersionRef(champion.model_name, champion.model_version, champion.model_run_id)
    return DemoSummary(
        champion=ref,
        champion_roc_auc=run_metric(settings, ref.run_id, "holdout_roc_auc"),
        manifests=manifests,
        predictions_uri=storage.uri("predictions"),
        tracking_uri=settings.mlflow_tracking_uri,
    )
