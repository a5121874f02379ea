"""Shared set-up for benchmarks: a lake with one large partition, a trained and registered model,
and what to print beside the figures about the machine that measured them."""

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from threadpoolctl import threadpool_info

from inferloop.core import catalog
from inferloop.core.settings import Settings, load_settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day


@contextmanager
def timed(results: dict, name: str):
    started = time.perf_counter()
    yield
    results[name] = time.perf_counter() - started


def bench_settings(root: Path | None = None, **overrides) -> Settings:
    root = root or Path(tempfile.mkdtemp(prefix="inferloop-bench-"))
    return load_settings(
        state_dir=root,
        storage_uri=(root / "lake").as_uri(),
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        **overrides,
    )


def write_partition(storage: Storage, dataset: str, rows: int, seed: int = 11) -> tuple[pd.DataFrame, str]:
    """One day of `rows` generated rows as `dataset`'s 2026-01-01 partition, in 1M-row row groups."""
    frames, written = [], 0
    day = GeneratorConfig(rows_per_day=min(rows, 1_000_000), seed=seed).day(0)
    path = catalog.features_file(dataset, day)
    with storage.open_parquet_writer(path, _schema()) as writer:
        while written < rows:
            chunk = min(1_000_000, rows - written)
            frame, _ = generate_day(GeneratorConfig(rows_per_day=chunk, seed=seed + written), 0)
            frame["transaction_id"] += written
            writer.write_table(pa.Table.from_pandas(frame, preserve_index=False))
            if not frames:
                frames.append(frame)
            written += chunk
    return frames[0], path


def _schema() -> pa.Schema:
    frame, _ = generate_day(GeneratorConfig(rows_per_day=10), 0)
    return pa.Table.from_pandas(frame, preserve_index=False).schema


def labelled(rows: int, seed: int) -> pd.DataFrame:
    features, labels = generate_day(GeneratorConfig(rows_per_day=rows, seed=seed), 0)
    return features.merge(labels[["transaction_id", "is_fraud"]], on="transaction_id")


def train_model(settings: Settings, rows: int = 100_000):
    """The default pipeline fitted on `rows` generated labelled rows."""
    from inferloop.tasks.data.feeds import prepare_features
    from inferloop.tasks.model.training import build_pipeline

    frame = labelled(rows, 3)
    return build_pipeline(settings.dataset).fit(prepare_features(frame, settings.dataset), frame["is_fraud"])


def propose_benchmark_suite(settings: Settings, reference: pd.DataFrame, rows: int) -> Settings:
    """A copy of the GX project with suites proposed for partitions of this size, as a team
    with such a feed would (`inferloop expectations suggest`); the committed one expects 5k rows."""
    from inferloop.tasks.gate.expectations import open_gx_project_for_edit, save_suite
    from inferloop.tasks.gate.suggest import suggest_expectations

    project = settings.state_dir / "expectations"
    shutil.copytree(settings.gate.expectations_dir, project)
    settings = settings.with_overrides(expectations_dir=project)
    context = open_gx_project_for_edit(settings.gate)
    for purpose in ("training", "inference"):
        expectations = suggest_expectations(reference.assign(is_fraud=0), settings.dataset, purpose, [rows])
        save_suite(context, settings.dataset, purpose, expectations)
    return settings


def bench_lake(rows: int, root: Path | None = None) -> tuple[Settings, Storage, pa.Table]:
    """A fresh state dir holding one `rows`-row partition (2026-01-01) and suites for its size.

    Rows are in event-time order, so the suite is proposed from a sample spread over the day.
    """
    from inferloop.core.storage import lake_storage

    settings = bench_settings(root)
    storage = lake_storage(settings.lake)
    _, path = write_partition(storage, settings.dataset.name, rows)
    table = storage.read_table(path)
    sample = table.take(np.random.default_rng(0).choice(rows, min(rows, 200_000), replace=False))
    return propose_benchmark_suite(settings, sample.to_pandas(), rows), storage, table


def scoring_seconds(settings: Settings, storage: Storage, model) -> float:
    """Wall time of the scoring task (read, gate, predict, write, manifest) on the partition."""
    from inferloop.core.registry import ModelVersionRef
    from inferloop.tasks.scoring.batch_scoring import score_partition

    ref = ModelVersionRef(name="bench", version="1", run_id="bench")
    started = time.perf_counter()
    score_partition.fn(
        storage, settings.dataset, model, ref, date(2026, 1, 1), "bench", settings.scoring, settings.gate
    )
    return time.perf_counter() - started


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def threads_reported() -> str:
    return ", ".join(
        f"{pool['user_api']}/{pool['internal_api']}={pool['num_threads']}" for pool in threadpool_info()
    )


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def machine_context() -> str:
    """What moves figures between machines of one kind, printed beside them: the CPU model, the
    CPUs this process may use, the thread counts threadpoolctl reports (of the libraries loaded
    so far) and the load average."""
    from inferloop.tasks.model.optimised import available_cpus

    return (
        f"CPU: {cpu_model()}; CPUs available: {available_cpus()} (os.cpu_count {os.cpu_count()}); "
        f"threadpoolctl: {threads_reported()}; load average: {load_average()}"
    )


def register_version(settings: Settings, model, frame: pd.DataFrame, name: str, optimised: bool = True):
    """Log `model` as a new version of `name` in the benchmark's tracking store, and give it its
    optimised artifact as registration does (`attach_optimised_artifact`: the compiled library,
    parity-gated on 2,000 of `frame`'s rows plus the generated edge cases) unless `optimised` is
    off. Returns the version and its runtime tag (`treelite` when usable, `sklearn` when off)."""
    import mlflow
    from mlflow.models import infer_signature

    from inferloop.core.registry import Registry
    from inferloop.tasks.data.feeds import prepare_features
    from inferloop.tasks.model.optimised_artifact import SKLEARN, attach_optimised_artifact
    from inferloop.tasks.model.registry import SKOPS_TRUSTED_TYPES, model_code

    root = settings.state_dir
    mlflow.set_tracking_uri(settings.registry.tracking_uri)
    experiment = mlflow.get_experiment_by_name("bench")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment("bench", artifact_location=(root / "artifacts").as_uri())
    )
    holdout = prepare_features(frame.iloc[:2_000], settings.dataset)
    example = holdout.iloc[:5]
    with mlflow.start_run(experiment_id=experiment_id):
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            input_example=example,
            signature=infer_signature(example, model.predict_proba(example)),
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            code_paths=model_code(Path(tempfile.mkdtemp(dir=root))),
        )
    version = str(logged.registered_model_version)
    if not optimised:
        return version, SKLEARN
    registry = Registry(settings.registry.tracking_uri, name)
    outcome = attach_optimised_artifact(
        registry, registry.get_version(version), model, holdout, settings.scoring.decision_threshold
    )
    return version, outcome.runtime_tag
