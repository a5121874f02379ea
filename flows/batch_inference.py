"""Score daily partitions with the champion model."""

from datetime import date, timedelta

from prefect import flow
from prefect.runtime import flow_run

from inferloop.settings import load_settings
from inferloop.storage import lake_storage
from tasks.data import days_between
from tasks.registry import load_model, resolve_alias
from tasks.reports import publish_scoring_report
from tasks.scoring import ScoringManifest, score_partition


def logical_date() -> date:
    """The day a scheduled run is responsible for: the day before it was scheduled to start."""
    scheduled = flow_run.scheduled_start_time
    return scheduled.date() - timedelta(days=1)


@flow(name="batch_inference", log_prints=True)
def batch_inference(partition_date: date | None = None, end_date: date | None = None
                    ) -> list[ScoringManifest]:
    """Score `partition_date` (default: the logical date) up to `end_date` with @champion.

    The alias is resolved once, so every partition of the run uses the same version. Each
    partition's output is keyed on (date, model version): rescoring it is a no-op.
    """
    settings = load_settings()
    spec = settings.dataset
    storage = lake_storage(settings)
    start = partition_date or logical_date()
    ref = resolve_alias(settings, settings.champion_alias)
    model = load_model(settings, ref)
    manifests = [
        score_partition(storage, spec, model, ref, day, str(flow_run.id),
                        settings.decision_threshold, settings.score_batch_rows)
        for day in days_between(start, end_date or start)
    ]
    publish_scoring_report(manifests)
    for m in manifests:
        status = "already scored, nothing rewritten" if m.reused else f"{m.rows_scored} rows scored"
        print(f"{m.partition_date}: {status} with {m.model_name} v{m.model_version} -> {m.output_uri}")
    return manifests
