"""Scoring one daily partition with a pinned model version: streamed, atomic, idempotent."""

import posixpath
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from prefect import task

from inferloop.core import catalog
from inferloop.core.dataset import DatasetSpec
from inferloop.core.errors import InferloopError
from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import GateSettings, ScoringSettings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import partition_files, prepare_features
from inferloop.tasks.gate.partition_gate import PartitionGate, decide, passing_chunks
from inferloop.tasks.gate.validation import ValidationReport
from inferloop.tasks.model.optimised import runtime_of
from inferloop.tasks.model.prediction import positive_scores

T = TypeVar("T")


@dataclass
class ScoringManifest:
    """The commit record of one predictions partition: it exists only if the output is whole."""

    dataset: str
    partition_date: str
    model_name: str
    model_version: str
    model_run_id: str
    role: str  # "champion" or "shadow"
    flow_run_id: str
    input_uri: str
    output_uri: str
    rows_in: int
    rows_scored: int
    rows_quarantined: int
    quarantine_uri: str | None = None
    files: list[dict] = field(default_factory=list)
    # The feature files scored (name, path, bytes, sha256); None in manifests written before
    # inputs were listed.
    inputs: list[dict] | None = None
    scored_at: str = ""
    seconds: float = 0.0
    reused: bool = False  # True when an earlier run had already scored this partition
    validation: ValidationReport | None = None  # this run's gate report (None when reused)
    runtime: str = "sklearn"  # what produced the scores: "sklearn" or "treelite" (a compiled library)

    @property
    def rows_per_second(self) -> float:
        return self.rows_scored / self.seconds if self.seconds else 0.0


def already_scored(storage: Storage, spec: DatasetSpec, ref: ModelVersionRef, day: date) -> bool:
    """True when `ref` has a complete predictions partition for `day` (its manifest exists) that
    covers every file the day's feature partition holds now (no file arrived after it)."""
    manifest_path = catalog.predictions_manifest(ref.name, ref.version, day)
    if not storage.exists(manifest_path):
        return False
    previous = ScoringManifest(**storage.read_json(manifest_path))
    return not late_files(storage, spec, previous, day)


def late_files(storage: Storage, spec: DatasetSpec, scored: ScoringManifest, day: date) -> list[str]:
    """The day's feature files that `scored` did not cover: files that arrived after the day was
    scored. A covered file whose size changed since is an error naming it (its predictions
    would no longer be its rows'); a covered file that is gone (retention) is fine."""
    if scored.inputs is None:  # written before manifests listed their inputs: covers the day
        return []
    covered = {entry["name"]: entry for entry in scored.inputs}
    files = partition_files(storage, spec, day)
    for relative in files:
        entry = covered.get(posixpath.basename(relative))
        if entry and storage.size(relative) != entry["bytes"]:
            raise InferloopError(
                f"{storage.uri(relative)} changed after it was scored on {scored.scored_at} "
                f"({entry['bytes']} bytes then): put late rows in a new file of the partition, "
                f"or delete {scored.output_uri} to score the day again"
            )
    return [f for f in files if posixpath.basename(f) not in covered]


def _constant(value: str, rows: int) -> pa.DictionaryArray:
    """A column holding one value: dictionary-encoded, so it costs nothing per row."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array([value]))


@task(name="score-partition")
def score_partition(
    storage: Storage,
    spec: DatasetSpec,
    model,  # None when the caller found the partition already scored (no model was loaded)
    ref: ModelVersionRef,
    day: date,
    flow_run_id: str,
    scoring: ScoringSettings,
    gate_settings: GateSettings,
    role: str = "champion",
) -> ScoringManifest:
    """Gate and score every row of the day's partition with `ref`, chunk by chunk.

    `role` is "champion" for the predictions production uses, "shadow" for a challenger scored
    on the same traffic so promotion can compare both later.

    Writes `predictions/model=NAME/version=V/date=D/part-0.parquet` (id, score, predicted
    label, lineage), the gate's quarantine, and then `_manifest.json`, which lists the input
    files it covers with their checksums. Keyed on (partition, model version): when the
    manifest already covers every file of the day nothing is recomputed or rewritten; files
    that arrived later are gated and scored on their own (a data file named after them) and
    added to the manifest, so each row is scored exactly once. A refused partition
    (BatchRefusedError) publishes nothing.
    """
    out_dir = catalog.predictions(ref.name, ref.version, day)
    manifest_path = catalog.manifest(out_dir)
    previous = None
    if storage.exists(manifest_path):
        previous = ScoringManifest(**storage.read_json(manifest_path))
        input_files = late_files(storage, spec, previous, day)
        if not input_files:
            return replace(previous, reused=True, validation=None)
        part = catalog.late_part(input_files)
        _sweep_unlisted(storage, previous, out_dir)
    else:
        input_files, part = partition_files(storage, spec, day), None
    if model is None:
        raise InferloopError(
            f"{day}'s predictions or feature files changed after this run found the day scored "
            f"({storage.uri(manifest_path)}): rerun it"
        )
    data_file = catalog.predictions_file(ref.name, ref.version, day, part)
    started = time.perf_counter()
    scored_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    with ThreadPoolExecutor(1, thread_name_prefix="input-checksums") as hashing:
        # Inputs are hashed while they are scored (hashing releases the GIL).
        checksums = [hashing.submit(storage.sha256, f) for f in input_files]
        report, rows_scored = _score_files(
            storage,
            spec,
            model,
            ref,
            day,
            input_files,
            data_file,
            part,
            [flow_run_id, scored_at, role],
            scoring,
            gate_settings,
        )
        inputs = [
            {
                "name": posixpath.basename(f),
                "path": storage.uri(f),
                "sha256": c.result()[0],
                "bytes": c.result()[1],
            }
            for f, c in zip(input_files, checksums, strict=True)
        ]
    checksum, size = storage.sha256(data_file)
    manifest = ScoringManifest(
        dataset=spec.name,
        partition_date=day.isoformat(),
        model_name=ref.name,
        model_version=ref.version,
        model_run_id=ref.run_id,
        role=role,
        flow_run_id=flow_run_id,
        input_uri=storage.uri(catalog.features(spec.name, day)),
        output_uri=storage.uri(out_dir),
        rows_in=report.rows_in,
        rows_scored=rows_scored,
        rows_quarantined=report.rows_quarantined,
        quarantine_uri=report.quarantine_uri,
        files=[{"path": storage.uri(data_file), "bytes": size, "sha256": checksum}],
        inputs=inputs,
        scored_at=scored_at,
        seconds=round(time.perf_counter() - started, 3),
        runtime=runtime_of(model),
    )
    if previous is not None:  # the late files' rows join the day's earlier ones
        manifest = replace(
            manifest,
            rows_in=previous.rows_in + manifest.rows_in,
            rows_scored=previous.rows_scored + manifest.rows_scored,
            rows_quarantined=previous.rows_quarantined + manifest.rows_quarantined,
            quarantine_uri=manifest.quarantine_uri or previous.quarantine_uri,
            files=previous.files + manifest.files,
            inputs=previous.inputs + manifest.inputs,
        )
    if manifest.rows_in != manifest.rows_scored + manifest.rows_quarantined:
        raise AssertionError(f"Row accounting broken for {day}: {manifest}")
    storage.write_json(manifest_path, asdict(manifest))
    manifest.validation = report
    return manifest


def _sweep_unlisted(storage: Storage, manifest: ScoringManifest, out_dir: str) -> None:
    """Delete data files the manifest does not list: a run that died between writing late
    files' scores and the manifest left them, and readers would count their rows twice."""
    listed = {posixpath.basename(entry["path"]) for entry in manifest.files}
    for relative in storage.data_files(out_dir):
        if posixpath.basename(relative) not in listed:
            storage.delete_file(relative)


def _score_files(
    storage: Storage,
    spec: DatasetSpec,
    model,
    ref: ModelVersionRef,
    day: date,
    input_files: list[str],
    data_file: str,
    part: str | None,
    run: list[str],  # flow run id, scored at, role
    scoring: ScoringSettings,
    gate_settings: GateSettings,
) -> tuple[ValidationReport, int]:
    """Gate `input_files` as one batch and write their passing rows' scores to `data_file`;
    the gate's report and the rows scored. A refusal publishes nothing."""
    flow_run_id, scored_at, role = run
    id_type = prediction_id_type(storage, spec, input_files)
    gate = PartitionGate(storage, spec, "inference", day, gate_settings, part=part)
    with (
        storage.open_parquet_writer(data_file, _output_schema(spec, id_type)) as writer,
        ThreadPoolExecutor(1, thread_name_prefix="write-predictions") as background_writer,
    ):
        written = None  # the previous chunk's write, in flight while this chunk is predicted
        for input_file in input_files:
            lineage = [
                ref.name,
                ref.version,
                ref.run_id,
                role,
                flow_run_id,
                storage.uri(input_file),
                scored_at,
            ]
            chunks = storage.iter_batches(input_file, scoring.score_batch_rows, spec.categorical_features)
            threshold = ref.threshold(scoring.decision_threshold)  # the version's own
            for ids, features in read_ahead(model_inputs(gate, chunks, spec, id_type)):
                scores = positive_scores(model, features)
                batch = pa.RecordBatch.from_arrays(
                    [
                        ids,
                        pa.array(scores),
                        pa.array((scores >= threshold).astype(np.int8)),
                        *[_constant(value, len(ids)) for value in lineage],
                    ],
                    schema=writer.schema,
                )
                if written is not None:
                    written.result()  # one write in flight: memory stays bounded, errors surface
                written = background_writer.submit(writer.write_batch, batch)
            if gate.critical_failed:
                break
        if written is not None:
            written.result()
        report = decide(gate)  # inside the writer: a refusal publishes no predictions
    return report, writer.rows


def model_inputs(
    gate: PartitionGate, chunks: Iterable[pa.RecordBatch], spec: DatasetSpec, id_type: pa.DataType
) -> Iterator[tuple[pa.Array, pd.DataFrame]]:
    """The ids (as `id_type`) and prepared features of each chunk's rows that pass the gate
    (only the feature columns become pandas; ids stay Arrow, on their way to the output)."""
    for passed in passing_chunks(gate, chunks):
        if passed.num_rows == 0:  # every row of the chunk was quarantined
            continue
        ids = passed.column(spec.id_column)
        yield (
            (ids if ids.type == id_type else pc.cast(ids, id_type)),
            prepare_features(passed.select(spec.feature_columns).to_pandas(), spec),
        )


def prediction_id_type(storage: Storage, spec: DatasetSpec, input_files: list[str]) -> pa.DataType:
    """The id type of a day's predictions: the partition's own, so every id is written exactly
    as the lake holds it and joins its features and labels. Integer ids are written as int64,
    text ids as text. A type the gate does not accept (e.g. float) is kept as it is: the gate
    refuses the partition, naming it. Files of one day whose ids are integers in one and text
    in another cannot both be kept exactly: that is an error naming them."""
    types = {}
    for input_file in input_files:
        schema = storage.read_schema(input_file)
        if spec.id_column in schema.names:  # a file without it: the gate refuses the partition
            id_type = schema.field(spec.id_column).type
            types[input_file] = id_type.value_type if pa.types.is_dictionary(id_type) else id_type
    if all(pa.types.is_signed_integer(t) for t in types.values()):
        return pa.int64()
    if all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in types.values()):
        return pa.string()
    if len(set(types.values())) > 1:
        listed = ", ".join(f"{storage.uri(f)}: {t}" for f, t in types.items())
        raise InferloopError(
            f"The {spec.name} partition's files hold ids of different types ({listed}): "
            f"import the day again from one source so '{spec.id_column}' has one type"
        )
    return next(iter(types.values()), pa.int64())


def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """`items`, produced up to `depth` ahead in a worker thread while the caller works on the
    current one. Scoring reads, gates and prepares the next chunks while the booster predicts
    this one: prediction releases the GIL, and the rest is mostly single-threaded, so on its
    own it would leave a core idle. Errors surface in order, where the item would have been."""
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as producer:
        pending = deque(producer.submit(next, items, _END) for _ in range(depth))
        while (item := pending.popleft().result()) is not _END:
            pending.append(producer.submit(next, items, _END))
            yield item


_END = object()


def _output_schema(spec: DatasetSpec, id_type: pa.DataType) -> pa.Schema:
    lineage = ("model_name", "model_version", "model_run_id", "role", "flow_run_id", "input_uri", "scored_at")
    return pa.schema(
        [
            (spec.id_column, id_type),
            ("score", pa.float64()),
            ("predicted_label", pa.int8()),
            *[(name, pa.dictionary(pa.int32(), pa.string())) for name in lineage],
        ]
    )
