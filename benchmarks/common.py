"""Shared set-up for benchmarks: a lake with one large partition and a trained model."""

import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa

from inferloop.settings import Settings, load_settings
from inferloop.storage import Storage
from inferloop.synthetic import GeneratorConfig, generate_day


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


def write_partition(storage: Storage, rows: int, seed: int = 11) -> tuple[pd.DataFrame, str]:
    """One day of `rows` generated rows as the 2026-01-01 partition, in 1M-row row groups."""
    frames, written = [], 0
    day = GeneratorConfig(rows_per_day=min(rows, 1_000_000), seed=seed).day(0)
    path = f"transactions/date={day}/part-0.parquet"
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


def train_model(settings: Settings, rows: int = 60_000):
    from tasks.data import prepare_features
    from tasks.training import build_pipeline

    features, labels = generate_day(GeneratorConfig(rows_per_day=rows, seed=3), 0)
    frame = features.merge(labels[["transaction_id", "is_fraud"]], on="transaction_id")
    model = build_pipeline(settings.dataset)
    return model.fit(prepare_features(frame, settings.dataset), frame["is_fraud"])
