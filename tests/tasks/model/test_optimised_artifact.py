"""Registration builds, gates, logs and tags every version's optimised artifact, against the
session's real MLflow server (tasks/model/optimised_artifact.py via log_and_register)."""

import uuid

import numpy as np
import pytest

from inferloop.core.settings import load_settings
from inferloop.serving.champion import ChampionFollower
from inferloop.tasks.data.feeds import prepare_features, write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.gate.partition_gate import gate_training_window
from inferloop.tasks.model.optimised import RUNTIME, OptimisedModel, c_compiler, runtime_of
from inferloop.tasks.model.optimised_artifact import (
    PARITY_TAG,
    PLATFORM_TAG,
    RUNTIME_TAG,
    NotUsable,
    load_optimised,
    load_parity_report,
)
from inferloop.tasks.model.registry import load_scoring_model, log_and_register, model_registry
from inferloop.tasks.model.training import fit_model

pytestmark = [
    pytest.mark.slow,  # a real MLflow server and a model compiled per registration
    pytest.mark.skipif(c_compiler() is None, reason="needs a C compiler"),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model fitted on four gated synthetic days, once for the module."""
    from inferloop.core.storage import lake_storage

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INFERLOOP_STORAGE_URI", (tmp_path_factory.mktemp("optimised") / "lake").as_uri())
        settings = load_settings()
        storage = lake_storage(settings.lake)
        days = write_synthetic_feed.fn(storage, settings.dataset, GeneratorConfig(days=4, rows_per_day=600))
        frame, _ = gate_training_window.fn(storage, settings.dataset, days[0], days[-1], settings.gate)
        result = fit_model.fn(frame, settings.dataset, settings.training, settings.scoring, "roc_auc")
    return frame, result, days


@pytest.fixture
def registered(trained, mlflow_server, monkeypatch):
    """Register the trained model as a new model on the session's MLflow server."""
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"optimised-{uuid.uuid4().hex[:8]}")
    frame, result, days = trained

    def register(optimised: bool = True):
        monkeypatch.setenv("INFERLOOP_OPTIMISED_ARTIFACT", str(optimised).lower())
        settings = load_settings()
        ref = log_and_register.fn(settings, result, frame, days[0], days[-1], "file:///features", [])
        registry = model_registry(settings.registry)
        return registry, ref, registry.version_tags(ref.version)

    return register


def test_a_registered_version_gets_a_gated_library_that_scores_like_sklearn(registered, trained):
    registry, ref, tags = registered()
    assert tags[RUNTIME_TAG] == RUNTIME
    assert tags[PLATFORM_TAG]
    assert tags[PARITY_TAG].startswith("parity passed")
    report = load_parity_report(registry, ref)
    assert report["passed"] and report["max_abs_diff"] <= 1e-6 and report["label_agreement"] == 1.0
    assert report["holdout_rows"] == trained[1].holdout_rows
    frame = trained[0]
    features = prepare_features(frame, load_settings().dataset)
    artifact = load_optimised(registry, ref, threads=1)
    pipeline = registry.load_model(ref)
    np.testing.assert_allclose(
        OptimisedModel(artifact.codes, artifact.compiled).positive_scores(features),
        pipeline.predict_proba(features)[:, 1],
        rtol=0,
        atol=1e-6,
    )
    scoring = load_scoring_model(load_settings().registry, ref)  # batch scoring's: no pipeline loaded
    assert runtime_of(scoring) == RUNTIME and scoring.fallback is None
    np.testing.assert_array_equal(
        scoring.predict_proba(features), artifact.compiled.predict_proba(pipeline[0].transform(features))
    )
    follower = ChampionFollower(registry, "challenger", poll_seconds=60)  # the online endpoint's
    follower.check_once()
    assert follower.current.ref.version == ref.version and runtime_of(follower.current.model) == RUNTIME


# A scoring process, as `inferloop infer` and the endpoint load a version: which libraries came in.
SCORE_IN_A_FRESH_PROCESS = """
import json, sys
import pandas as pd
from inferloop.core.settings import load_settings
from inferloop.tasks.model.registry import load_scoring_model, resolve_alias
settings = load_settings()
model = load_scoring_model(settings.registry, resolve_alias.fn(settings.registry, "challenger"))
scores = model.predict_proba(pd.read_json(sys.stdin, orient="split"))[:, 1]
print(json.dumps({"runtime": model.runtime, "scores": scores.tolist(), "sklearn": "sklearn" in sys.modules}))
"""


def test_a_compiled_version_scores_without_loading_scikit_learn(registered, trained):
    """Its saved encoding stands in for the pipeline: no pipeline download or unpickling, and no
    scikit-learn import (about a second of a scoring process's start)."""
    import json
    import os
    import subprocess
    import sys

    registry, ref, _ = registered()
    features = prepare_features(trained[0], load_settings().dataset).head(50)
    result = subprocess.run(
        [sys.executable, "-c", SCORE_IN_A_FRESH_PROCESS],
        input=features.to_json(orient="split"),
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scored = json.loads(result.stdout.strip().splitlines()[-1])
    assert scored["runtime"] == RUNTIME and not scored["sklearn"]
    np.testing.assert_allclose(
        scored["scores"], registry.load_model(ref).predict_proba(features)[:, 1], rtol=0, atol=1e-6
    )


def test_a_version_without_a_saved_encoding_scores_with_its_pipeline_encoder(
    registered, trained, monkeypatch
):
    """Versions registered before the encoding was saved beside the library: the pipeline is
    loaded for its encoder, and the library still scores."""
    from inferloop.tasks.model import optimised_artifact

    registry, ref, _ = registered()
    monkeypatch.setattr(optimised_artifact, "CODES_FILE", "not-saved-then.json")
    assert load_optimised(registry, ref).codes is None
    model = load_scoring_model(load_settings().registry, ref)
    features = prepare_features(trained[0], load_settings().dataset)
    assert runtime_of(model) == RUNTIME
    np.testing.assert_allclose(
        model.predict_proba(features), registry.load_model(ref).predict_proba(features), rtol=0, atol=1e-6
    )


def test_a_model_for_dask_workers_brings_its_pipeline_along(registered):
    _, ref, _ = registered()
    shipped = load_scoring_model(load_settings().registry, ref, fallback=True)
    assert runtime_of(shipped) == RUNTIME and runtime_of(shipped.fallback) == "sklearn"


def test_without_a_compiler_the_version_is_registered_without_it_and_says_so(
    registered, monkeypatch, tmp_path
):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    registry, ref, tags = registered()
    assert tags[RUNTIME_TAG].startswith("unavailable: No C compiler")
    assert registry.load_model(ref) is not None  # the version itself is there, scored by sklearn
    with pytest.raises(NotUsable, match="no usable optimised artifact"):
        load_optimised(registry, ref)


def test_a_library_that_fails_parity_is_logged_tagged_and_never_loaded(registered, monkeypatch):
    """A deliberately perturbed library (one tree's leaves moved by 1e-3) in place of the real one."""
    from inferloop.tasks.model import optimised, optimised_artifact

    def perturbed_library(pipeline, directory, threads=None):
        model = optimised.treelite_model(optimised.booster_of(pipeline))
        tree = model.get_tree_accessor(0)
        leaves = tree.get_field("leaf_value").copy()
        leaves[tree.get_field("node_type") == 0] += 1e-3
        tree.set_field("leaf_value", leaves)
        return optimised.compile_library(model, directory, threads)

    monkeypatch.setattr(optimised_artifact, "build_library", perturbed_library)
    registry, ref, tags = registered()
    assert tags[RUNTIME_TAG].startswith("failed parity: max |Δprobability|")
    report = load_parity_report(registry, ref)
    assert not report["passed"] and report["max_abs_diff"] > 1e-6
    assert report["reason"] in tags[RUNTIME_TAG]
    with pytest.raises(NotUsable, match="failed parity"):
        load_optimised(registry, ref)
    assert runtime_of(load_scoring_model(load_settings().registry, ref)) == "sklearn"


def test_with_the_setting_off_no_artifact_is_built(registered):
    registry, ref, tags = registered(optimised=False)
    assert RUNTIME_TAG not in tags
    with pytest.raises(NotUsable):
        load_optimised(registry, ref)


def test_a_version_registered_elsewhere_is_not_loaded_on_another_platform(registered):
    registry, ref, _ = registered()
    registry.tag_version(ref.version, {PLATFORM_TAG: "Plan9-mips"})
    with pytest.raises(NotUsable, match="built for Plan9-mips"):
        load_optimised(registry, ref)
