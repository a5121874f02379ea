"""Scoring one daily partition with a pinned model version: streamed, atomic, idempotent."""

import hashlib
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
from prefect import task

from inferloop.dataset import DatasetSpec
from inferloop.storage import MANIFEST, Storage, StorageError, partition_dir
from tasks.data import MissingDataError, prepare_features
from tasks.registry import ModelVersionRef


@dataclass
class ScoringManifest:
    """The commit record of one predictions partition: it exists only if the output is whole."""

    dataset: str
    partition_date: str
    model_name: str
    model_version: str
    model_run_id: str
    flow_run_id: str
    input_uri: str
    output_uri: str
    rows_in: int
    rows_scored: int
    rows_quarantined: int
    files: list[dict] = field(default_factory=list)
    scored_at: str = ""
    seconds: float = 0.0
    reused: bool = False  # True when an earlier run had already scored this partition

    @property
    def rows_per_second(self) -> float:
        return self.rows_scored / self.seconds if self.seconds else 0.0


def predictions_dir(ref: ModelVersionRef, day: date) -> str:
    return f"predictions/model={ref.name}/version={ref.version}/date={day.isoformat()}"


def _constant(value: str, rows: int) -> pa.DictionaryArray:
    """A column holding one value: dictionary-encoded, so it costs nothing per row."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)),
                                          pa.array([value]))


def _sha256(storage: Storage, relative_file: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with storage.filesystem.open_input_stream(storage.path(relative_file)) as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@task(name="score-partition")
def score_partition(storage: Storage, spec: DatasetSpec, model, ref: ModelVersionRef,
                    day: date, flow_run_id: str, threshold: float, batch_rows: int
                    ) -> ScoringManifest:
    """Score every row of the day's partition with `ref`, chunk by chunk.

    Writes `predictions/model=NAME/version=V/date=D/part-0.parquet` (id, score, predicted
    label, lineage) and then `_manifest.json`. Keyed on (partition, model version): when the
    manifest already exists nothing is recomputed or rewritten.
    """
    out_dir = predictions_dir(ref, day)
    manifest_path = f"{out_dir}/{MANIFEST}"
    if storage.exists(manifest_path):
        return ScoringManifest(**{**storage.read_json(manifest_path), "reused": True})

    in_dir = partition_dir(spec.features_table, day)
    if not storage.exists(in_dir):
        raise MissingDataError(f"No {spec.name} partition for {day} at {storage.uri(in_dir)}")
    input_files = storage.data_files(in_dir)
    if not input_files:
        raise StorageError(f"{storage.uri(in_dir)} holds no parquet files")

    started = time.perf_counter()
    scored_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    data_file = f"{out_dir}/part-0.parquet"
    schema = pa.schema([
        (spec.id_column, pa.int64()), ("score", pa.float64()), ("predicted_label", pa.int8()),
        *[(name, pa.dictionary(pa.int32(), pa.string())) for name in
          ("model_name", "model_version", "model_run_id", "flow_run_id", "input_uri",
           "scored_at")],
    ])
    rows_in = 0
    with storage.open_parquet_writer(data_file, schema) as writer:
        for input_file in input_files:
            lineage = {"model_name": ref.name, "model_version": ref.version,
                       "model_run_id": ref.run_id, "flow_run_id": flow_run_id,
                       "input_uri": storage.uri(input_file), "scored_at": scored_at}
            for batch in storage.iter_batches(input_file, batch_rows):
                frame = batch.to_pandas()
                missing = sorted(set(spec.inference_columns) - set(frame.columns))
                if missing:
                    raise MissingDataError(
                        f"{storage.uri(input_file)} lacks spec columns {missing}: fix the feed "
                        f"or the dataset spec")
                scores = model.predict_proba(prepare_features(frame, spec))[:, 1]
                rows = len(frame)
                rows_in += rows
                writer.write_batch(pa.RecordBatch.from_arrays(
                    [pa.array(frame[spec.id_column].to_numpy(dtype=np.int64)),
                     pa.array(scores),
                     pa.array((scores >= threshold).astype(np.int8)),
                     *[_constant(value, rows) for value in lineage.values()]],
                    schema=schema))
    checksum, size = _sha256(storage, data_file)
    manifest = ScoringManifest(
        dataset=spec.name, partition_date=day.isoformat(), model_name=ref.name,
        model_version=ref.version, model_run_id=ref.run_id, flow_run_id=flow_run_id,
        input_uri=storage.uri(in_dir), output_uri=storage.uri(out_dir), rows_in=rows_in,
        rows_scored=writer.rows, rows_quarantined=0,
        files=[{"path": storage.uri(data_file), "bytes": size, "sha256": checksum}],
        scored_at=scored_at, seconds=round(time.perf_counter() - started, 3))
    if manifest.rows_in != manifest.rows_scored + manifest.rows_quarantined:
        raise AssertionError(f"Row accounting broken for {day}: {manifest}")
    storage.write_json(manifest_path, asdict(manifest))
    return manifest
