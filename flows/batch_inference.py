"""Score partitions with the champion model, behind the data-quality gate."""

from datetime import date
from typing import Any

from prefect import flow
from prefect.futures import as_completed
from prefect.runtime import flow_run

from inferloop.core.errors import InferloopError
from inferloop.core.periods import Partitioning, PartitionKey
from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.runtime.alert_events import PARTITION_REFUSED, emit_alert
from inferloop.runtime.runners import configured_task_runner
from inferloop.tasks.gate.validation import BatchRefusedError
from inferloop.tasks.model.registry import find_alias, load_scoring_model, resolve_alias
from inferloop.tasks.reports import PartitionProgress, publish_scoring_report, publish_validation_report
from inferloop.tasks.scoring.batch_scoring import ScoringManifest, already_scored, score_partition


def logical_partition(partitioning: Partitioning, day: date | None = None) -> date:
    """The partition a run is responsible for: `day`'s when given (any day in it names it), else
    the one before the partition the run was scheduled to start in (yesterday, last week, last
    month)."""
    if day is not None:
        return partitioning.floor(day)
    return partitioning.shift(flow_run.scheduled_start_time, -1)


@flow(name="batch_inference", log_prints=True, task_runner=configured_task_runner(load_settings()))
def batch_inference(
    partition_date: PartitionKey | None = None,
    end_date: PartitionKey | None = None,
    shadow: bool = False,
    overrides: dict[str, Any] | None = None,
) -> list[ScoringManifest]:
    """Gate and score `partition_date` (default: the logical date) up to `end_date` with
    @champion (and, with `shadow`, also with @challenger: its own output, marked as shadow).

    The alias is resolved once, so every partition of the run uses the same version. Each
    partition's output is keyed on (date, model version): rescoring it is a no-op, and a run
    whose partitions are all scored does not load the model. A partition
    the gate refuses gets no predictions; the run scores the others and then fails naming it.
    A progress artifact advances as each partition finishes; a table artifact sums the run up.

    Args:
        partition_date: First partition to score, any day in it (default: the logical date,
            the partition before the one the run was scheduled in: yesterday for a daily feed).
        end_date: Last day to score, for backfills (default: partition_date).
        shadow: Also score with @challenger, written beside the champion's output as shadow.
        overrides: Settings to change for this run, by knob name, e.g. {"min_roc_auc": 0.7};
            see the README's Settings table. The task runner is chosen when the flow starts
            (INFERLOOP_TASK_RUNNER, or `inferloop infer --runner`), not by an override.
    """
    settings = load_settings(**(overrides or {}))
    spec = settings.dataset
    storage = lake_storage(settings.lake)
    start = logical_partition(spec.partitioning, partition_date)
    scorers = {"champion": resolve_alias(settings.registry, settings.registry.champion_alias)}
    challenger = find_alias(settings.registry, settings.registry.challenger_alias) if shadow else None
    if challenger and challenger.version != scorers["champion"].version:
        scorers["shadow"] = challenger
    days = spec.partitioning.keys(start, end_date or start)
    # A model is loaded only to score something: a rerun of scored partitions loads none.
    # Compiled where its parity gate passed; for Dask workers with its pipeline, should the
    # library not load there.
    on_workers = settings.runner.task_runner == "dask"
    models = {
        role: load_scoring_model(settings.registry, ref, fallback=on_workers)
        for role, ref in scorers.items()
        if not all(already_scored(storage, spec, ref, day) for day in days)
    }
    flow_run_id = str(flow_run.id)
    # One task per partition (and model): with the Dask runner they score on different workers.
    futures = [
        score_partition.submit(
            storage, spec, models.get(role), ref, day, flow_run_id, settings.scoring, settings.gate, role
        )
        for role, ref in scorers.items()
        for day in days
    ]
    progress = PartitionProgress(
        len(futures),
        f"scoring-progress-{spec.name}",
        f"Scoring {days[0]}..{days[-1]}: {len(futures)} partitions",
    )
    manifests, refusals = [], []
    for future in as_completed(futures):
        try:
            manifest = future.result()
        except BatchRefusedError as refusal:
            publish_validation_report(refusal.report)
            refusals.append(str(refusal))
            alert_refusal(refusal, scorers["champion"], settings.registry.tracking_uri)
            progress.advance()
            continue
        if manifest.validation:
            publish_validation_report(manifest.validation)
        manifests.append(manifest)
        status = (
            "already scored, nothing rewritten"
            if manifest.reused
            else f"{manifest.rows_scored} rows scored, {manifest.rows_quarantined} quarantined"
        )
        print(
            f"{manifest.partition_date} ({manifest.role}): {status} with {manifest.model_name} "
            f"v{manifest.model_version} -> {manifest.output_uri}"
        )
        progress.advance()
    manifests.sort(key=lambda m: (m.role, m.partition_date))  # champion first, then by day
    publish_scoring_report(manifests)
    if refusals:
        raise InferloopError(" | ".join(refusals))
    return manifests


def alert_refusal(refusal: BatchRefusedError, model: ModelVersionRef, tracking_uri: str) -> None:
    """Tell people the gate refused a partition. Only the failed checks' names travel: their
    details may quote observed values of a column."""
    report = refusal.report
    failed = sorted({reason.split(":")[0] for reason in report.reasons})
    emit_alert(
        PARTITION_REFUSED,
        model.name,
        f"The data-quality gate refused {report.dataset} {report.partition_date} ({report.suite}, "
        f"{report.rows_in} rows): nothing was scored for it",
        version=model.version,
        partition=report.partition_date,
        reasons=failed,
        tracking_uri=tracking_uri,
    )
