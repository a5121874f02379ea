from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from inferloop.core import catalog
from inferloop.core.errors import InferloopError
from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.feeds import MissingDataError, prepare_features, write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.gate.partition_gate import gate_training_window
from inferloop.tasks.gate.validation import BatchRefusedError
from inferloop.tasks.model.training import fit_model
from inferloop.tasks.scoring.batch_scoring import already_scored, score_partition

REF = ModelVersionRef(name="m", version="3", run_id="run-abc")


FEED = GeneratorConfig(days=4, rows_per_day=2_500)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """Fitted once per module on the feed's first 3 days (gating and fitting them took most of
    each test's time); the feed is deterministic, so every test's lake holds the same days."""
    settings = load_settings(storage_uri=tmp_path_factory.mktemp("training-lake").as_uri())
    storage, spec = lake_storage(settings.lake), settings.dataset
    days = write_synthetic_feed.fn(storage, spec, FEED)
    frame, _ = gate_training_window.fn(storage, spec, days[0], days[2], settings.gate)
    return fit_model.fn(frame, spec, settings.training, settings.scoring, "roc_auc").model


@pytest.fixture
def scored_setup(settings, model):
    storage = lake_storage(settings.lake)
    days = write_synthetic_feed.fn(storage, settings.dataset, FEED)
    return storage, settings.dataset, model, days[3]


def score(storage, spec, model, day, ref=REF):
    settings = load_settings(score_batch_rows=1_000)
    return score_partition.fn(storage, spec, model, ref, day, "flow-run-1", settings.scoring, settings.gate)


def test_every_row_is_scored_with_lineage(scored_setup):
    storage, spec, model, day = scored_setup
    manifest = score(storage, spec, model, day)
    output = storage.read_table(catalog.predictions(REF.name, REF.version, day)).to_pandas()
    source = storage.read_table(f"{spec.name}/date={day}").to_pandas()
    assert manifest.rows_in == manifest.rows_scored == len(output) == len(source) == 2_500
    assert sorted(output[spec.id_column]) == sorted(source[spec.id_column])
    # Each row's score is the model's own for that row's features (matched by id, not position).
    expected = source.set_index(spec.id_column).loc[output[spec.id_column]]
    assert output["score"].to_numpy() == pytest.approx(
        model.predict_proba(prepare_features(expected, spec))[:, 1]
    )
    assert (output["predicted_label"] == (output["score"] >= 0.5)).all()
    assert set(output["model_version"]) == {"3"} and set(output["model_run_id"]) == {"run-abc"}
    assert set(output["flow_run_id"]) == {"flow-run-1"}
    assert output["input_uri"].str.endswith("part-0.parquet").all()
    data_file = catalog.predictions_file(REF.name, REF.version, day)
    checksum, size = storage.sha256(data_file)  # the manifest describes the file as written
    assert manifest.files == [{"path": storage.uri(data_file), "bytes": size, "sha256": checksum}]


def test_a_version_labels_rows_at_its_own_threshold_not_the_settings_one(scored_setup):
    storage, spec, model, day = scored_setup
    own = ModelVersionRef(name="m", version="5", run_id="run-5", decision_threshold=0.02)
    score(storage, spec, model, day, ref=own)
    output = storage.read_table(catalog.predictions(own.name, own.version, day)).to_pandas()
    assert (output["predicted_label"] == (output["score"] >= 0.02)).all()
    assert (output["predicted_label"] != (output["score"] >= 0.5)).any()  # the setting's 0.5 differs


def test_rescoring_the_same_version_is_a_no_op(scored_setup):
    storage, spec, model, day = scored_setup
    first = score(storage, spec, model, day)
    before = storage.read_table(catalog.predictions(REF.name, REF.version, day))
    again = score(storage, spec, model, day)
    assert again.reused and not first.reused
    assert again.files == first.files and again.flow_run_id == first.flow_run_id
    assert storage.read_table(catalog.predictions(REF.name, REF.version, day)).equals(before)


def test_another_version_writes_its_own_output(scored_setup):
    storage, spec, model, day = scored_setup
    score(storage, spec, model, day)
    other = ModelVersionRef(name="m", version="4", run_id="run-def")
    manifest = score(storage, spec, model, day, ref=other)
    assert not manifest.reused and "version=4" in manifest.output_uri
    assert storage.exists(catalog.predictions(REF.name, REF.version, day))


def test_missing_partition_is_a_clear_error(scored_setup):
    storage, spec, model, _ = scored_setup
    with pytest.raises(MissingDataError, match="No transactions partition for 2030-01-01"):
        score(storage, spec, model, date(2030, 1, 1))


def test_missing_column_fails_and_publishes_nothing(scored_setup):
    storage, spec, model, day = scored_setup
    path = f"{spec.name}/date={day}/part-0.parquet"
    table = storage.read_table(path)
    storage.write_table(path, table.drop_columns(["amount"]))
    with pytest.raises(BatchRefusedError, match=r"missing columns \['amount'\]"):
        score(storage, spec, model, day)
    assert not storage.exists(catalog.predictions(REF.name, REF.version, day) + "/_manifest.json")
    assert not storage.exists(catalog.predictions(REF.name, REF.version, day) + "/part-0.parquet")


def test_output_schema_is_stable(scored_setup):
    storage, spec, model, day = scored_setup
    score(storage, spec, model, day)
    schema = storage.read_table(catalog.predictions(REF.name, REF.version, day)).schema
    assert schema.field("score").type == pa.float64()
    assert schema.names[:3] == [spec.id_column, "score", "predicted_label"]


def test_a_chunk_with_every_row_quarantined_is_skipped_not_scored(scored_setup):
    storage, spec, model, day = scored_setup
    path = f"{spec.name}/date={day}/part-0.parquet"
    frame = storage.read_table(path).to_pandas()
    frame.loc[:999, "amount"] = -1.0  # every row of the first chunk fails a row-level check
    # 1,000 of 2,500 rows bad is above the 10% limit: raise it so the partition is accepted.
    settings = load_settings(score_batch_rows=1_000, max_quarantine_share=0.5)
    storage.write_table(path, pa.Table.from_pandas(frame, preserve_index=False))
    manifest = score_partition.fn(
        storage, spec, model, REF, day, "flow-run-1", settings.scoring, settings.gate
    )
    assert (manifest.rows_scored, manifest.rows_quarantined) == (1_500, 1_000)


def with_ids(storage, spec, path: str, ids: pa.Array) -> pa.Table:
    """Replace the ids of a partition file; returns the rewritten table."""
    table = storage.read_table(path)
    table = table.set_column(table.schema.get_field_index(spec.id_column), spec.id_column, ids)
    storage.write_table(path, table)
    return table


@pytest.mark.parametrize(
    "make_ids",
    [
        lambda n: pa.array([f"tx-{i}" for i in range(n)]),  # a source's own text ids
        lambda n: pa.array([f"{i}.0" for i in range(n)]),  # float-looking text, kept as written
        lambda n: pa.array([str(2**64 - 1 - i) for i in range(n)]),  # beyond int64, as import stores it
        lambda n: pa.array(range(n), pa.int32()),  # narrower integers are written as int64
    ],
)
def test_any_id_the_gate_accepts_is_scored_and_written_exactly(scored_setup, make_ids):
    storage, spec, model, day = scored_setup
    path = f"{spec.name}/date={day}/part-0.parquet"
    source = with_ids(storage, spec, path, make_ids(2_500))
    manifest = score(storage, spec, model, day)
    output = storage.read_table(catalog.predictions(REF.name, REF.version, day))
    assert manifest.rows_scored == output.num_rows == 2_500
    assert output.column(spec.id_column).to_pylist() == source.column(spec.id_column).to_pylist()
    id_type = output.schema.field(spec.id_column).type
    assert id_type == (
        pa.int64() if pa.types.is_integer(source.schema.field(spec.id_column).type) else pa.string()
    )
    # Each row's score is its own row's, matched by id.
    frame = source.to_pandas().set_index(spec.id_column).loc[output.column(spec.id_column).to_pylist()]
    expected = model.predict_proba(prepare_features(frame, spec))[:, 1]
    assert output.column("score").to_numpy() == pytest.approx(expected)


def test_files_of_one_day_with_integer_and_text_ids_are_a_clear_error(scored_setup):
    storage, spec, model, day = scored_setup
    path = f"{spec.name}/date={day}/part-0.parquet"
    table = storage.read_table(path)
    half = table.num_rows // 2
    storage.write_table(path, table.slice(0, half))
    text = table.slice(half)
    column = text.schema.get_field_index(spec.id_column)
    text = text.set_column(column, spec.id_column, pc.cast(text.column(column), pa.string()))
    storage.write_table(f"{spec.name}/date={day}/part-import.parquet", text)
    with pytest.raises(
        InferloopError, match=r"hold ids of different types .*int64.*string.*import the day again"
    ):
        score(storage, spec, model, day)
    assert not storage.exists(catalog.predictions(REF.name, REF.version, day))


def add_late_file(storage, spec, day, rows: int, name: str = "part-late.parquet") -> pa.Table:
    """A file of `rows` new rows (fresh ids) put into a day's feature partition after it was scored."""
    source = storage.read_table(catalog.features_file(spec.name, day)).slice(0, rows)
    ids = pc.add(source.column(spec.id_column), 10**9)
    late = source.set_column(source.schema.get_field_index(spec.id_column), spec.id_column, ids)
    storage.write_table(f"{catalog.features(spec.name, day)}/{name}", late)
    return late


def test_a_file_that_arrives_after_its_day_was_scored_is_scored_exactly_once(scored_setup):
    storage, spec, model, day = scored_setup
    first = score(storage, spec, model, day)
    assert [entry["name"] for entry in first.inputs] == ["part-0.parquet"]
    assert already_scored(storage, spec, REF, day)
    late = add_late_file(storage, spec, day, rows=300)
    assert not already_scored(storage, spec, REF, day)

    second = score(storage, spec, model, day)
    assert not second.reused
    assert second.rows_in == second.rows_scored + second.rows_quarantined == 2_800
    assert [entry["name"] for entry in second.inputs] == ["part-0.parquet", "part-late.parquet"]
    late_input = f"{catalog.features(spec.name, day)}/part-late.parquet"
    assert (second.inputs[1]["sha256"], second.inputs[1]["bytes"]) == storage.sha256(late_input)
    assert len(second.files) == 2 and second.files[0] == first.files[0]
    output = storage.read_table(catalog.predictions(REF.name, REF.version, day)).to_pandas()
    source_ids = storage.read_table(catalog.features(spec.name, day)).column(spec.id_column).to_pylist()
    assert sorted(output[spec.id_column]) == sorted(source_ids)  # each row once, none missing
    assert set(late.column(spec.id_column).to_pylist()) <= set(output[spec.id_column])

    third = score(storage, spec, model, day)
    assert third.reused and third.files == second.files
    assert len(storage.read_table(catalog.predictions(REF.name, REF.version, day))) == 2_800


def test_scores_of_late_files_left_by_a_crashed_run_are_replaced_not_counted_twice(scored_setup):
    storage, spec, model, day = scored_setup
    score(storage, spec, model, day)
    add_late_file(storage, spec, day, rows=100)
    out_dir = catalog.predictions(REF.name, REF.version, day)
    # A run that died after writing a late file's scores, before the manifest listed them.
    storage.write_table(f"{out_dir}/part-0123456789abcdef.parquet", storage.read_table(out_dir).slice(0, 50))
    manifest = score(storage, spec, model, day)
    assert len(storage.read_table(out_dir)) == manifest.rows_scored == 2_600


def test_a_scored_file_that_changed_is_a_clear_error_naming_it(scored_setup):
    storage, spec, model, day = scored_setup
    score(storage, spec, model, day)
    features_file = catalog.features_file(spec.name, day)
    storage.write_table(features_file, storage.read_table(features_file).slice(0, 2_000))
    with pytest.raises(InferloopError, match=r"part-0.parquet changed after it was scored .* new file"):
        score(storage, spec, model, day)
