"""Batch scoring with a version's compiled library: same scores, and the manifest says which
runtime produced them."""

import pickle

import numpy as np
import pytest

from inferloop.core import catalog
from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.feeds import prepare_features, write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.gate.partition_gate import gate_training_window
from inferloop.tasks.model.optimised import (
    CompiledModel,
    OptimisedModel,
    build_library,
    c_compiler,
    encoder_of,
    runtime_of,
)
from inferloop.tasks.model.training import fit_model
from inferloop.tasks.scoring.batch_scoring import score_partition

pytestmark = pytest.mark.skipif(c_compiler() is None, reason="needs a C compiler")


@pytest.fixture
def setup(settings, tmp_path):
    storage = lake_storage(settings.lake)
    spec = settings.dataset
    days = write_synthetic_feed.fn(storage, spec, GeneratorConfig(days=4, rows_per_day=1_500))
    frame, _ = gate_training_window.fn(storage, spec, days[0], days[2], settings.gate)
    pipeline = fit_model.fn(frame, spec, settings.training, settings.scoring, "roc_auc").model
    compiled = CompiledModel(build_library(pipeline, tmp_path / "optimised", threads=2).path)
    return storage, spec, pipeline, OptimisedModel(encoder_of(pipeline), compiled), days[3]


def scored(storage, spec, model, day, version):
    settings = load_settings(score_batch_rows=1_000)
    ref = ModelVersionRef(name="m", version=version, run_id="run-abc")
    manifest = score_partition.fn(
        storage, spec, model, ref, day, "flow-run-1", settings.scoring, settings.gate
    )
    return manifest, storage.read_table(catalog.predictions("m", version, day)).to_pandas()


def test_the_compiled_model_scores_a_partition_like_sklearn_says_so_and_pickles(setup):
    storage, spec, pipeline, optimised, day = setup
    fast, fast_rows = scored(storage, spec, optimised, day, "1")
    slow, slow_rows = scored(storage, spec, pipeline, day, "2")
    assert (fast.runtime, slow.runtime) == ("treelite", "sklearn")
    assert storage.read_json(catalog.predictions_manifest("m", "1", day))["runtime"] == "treelite"
    assert fast.rows_scored == slow.rows_scored == 1_500
    assert (fast_rows["transaction_id"] == slow_rows["transaction_id"]).all()
    np.testing.assert_allclose(fast_rows["score"], slow_rows["score"], rtol=0, atol=1e-12)
    assert (fast_rows["predicted_label"] == slow_rows["predicted_label"]).all()

    # Dask ships the model to its workers by pickle: the library travels as bytes.
    arrived = pickle.loads(pickle.dumps(optimised))
    features = prepare_features(storage.read_table(f"{spec.name}/date={day}").to_pandas(), spec)
    assert runtime_of(arrived) == "treelite" and runtime_of(pipeline) == "sklearn"
    np.testing.assert_array_equal(arrived.predict_proba(features), optimised.predict_proba(features))
