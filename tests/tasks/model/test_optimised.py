"""The compiled booster and its parity gate (tasks/model/optimised.py, tasks/model/parity.py):
small models, compiled with the real gcc, compared with scikit-learn on generated edge cases."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from inferloop.tasks.model.optimised import (
    CompiledModel,
    OptimisedArtifactUnavailable,
    OptimisedModel,
    available_cpus,
    booster_of,
    build_library,
    c_compiler,
    cgroup_cpu_quota,
    compile_library,
    encoder_of,
    prepared_features,
    prune_library_cache,
)
from inferloop.tasks.model.parity import check_parity, edge_cases
from inferloop.tasks.model.training import build_pipeline

CATEGORICAL = ["channel", "country", "device"]
NUMERIC = ["amount", "age", "hour"]

pytestmark = pytest.mark.skipif(c_compiler() is None, reason="needs a C compiler")


def frame_with_missing_categoricals(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Features where a missing `channel` carries its own signal: the booster learns splits that
    send missing values one way and every known category the other (the issue's mismatch)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "channel": rng.choice(["web", "app", "pos", "atm", "phone"], rows),
            "country": rng.choice([f"c{i}" for i in range(70)], rows),  # more than 64: two bitset words
            "device": rng.choice(["ios", "android", "other"], rows),
            "amount": rng.lognormal(3, 1, rows),
            "age": rng.integers(18, 90, rows).astype(float),
            "hour": rng.integers(0, 24, rows).astype(float),
        }
    )
    for column in frame.columns:
        frame.loc[rng.random(rows) < 0.08, column] = np.nan
    logit = (
        2.5 * frame["channel"].isna()
        + 1.0 * frame["channel"].isin(["app", "atm"])
        + 0.8 * frame["country"].isin([f"c{i}" for i in range(0, 70, 3)])
        - 1.2 * frame["device"].isna()
        + 0.02 * (frame["amount"].fillna(20) - 20)
        + rng.normal(0, 0.7, rows)
        - 0.8
    )
    return frame, (logit > 0).to_numpy().astype(int)


@pytest.fixture(scope="module")
def pipeline():
    """The project's pipeline (encoder + HistGradientBoosting), fewer trees for speed."""
    frame, target = frame_with_missing_categoricals(6_000, seed=0)
    spec = SimpleNamespace(categorical_features=CATEGORICAL, numeric_features=NUMERIC, pii={})
    return build_pipeline(spec).set_params(model__max_iter=40).fit(frame, target)


@pytest.fixture(scope="module")
def holdout():
    frame, _ = frame_with_missing_categoricals(2_000, seed=1)
    frame.loc[frame.index[:50], "country"] = "never-seen"  # unseen at scoring: encoded as missing
    return frame


@pytest.fixture(scope="module")
def library(pipeline, tmp_path_factory) -> Path:
    return build_library(pipeline, tmp_path_factory.mktemp("optimised"), threads=2).path


def missing_only_left_splits(booster) -> int:
    """Categorical splits sending missing values left and every known category right."""
    count = 0
    for (predictor,) in booster._predictors:
        for node in predictor.nodes:
            if node["is_categorical"] and not node["is_leaf"] and node["missing_go_to_left"]:
                count += not predictor.raw_left_cat_bitsets[node["bitset_idx"]].any()
    return count


def test_the_compiled_library_scores_like_sklearn_with_missing_categoricals(pipeline, holdout, library):
    assert missing_only_left_splits(booster_of(pipeline)) > 0  # the case the issue measured
    report = check_parity(pipeline, CompiledModel(library), holdout, decision_threshold=0.5)
    assert report.passed, report.reason
    assert report.max_abs_diff <= 1e-6
    assert report.label_agreement == 1.0
    assert report.holdout_rows == len(holdout)
    assert report.rows_compared > len(holdout) + 1_000  # the generated edge cases were compared too
    assert {"missing_each_feature", "every_category_code", "at_split_thresholds", "extreme_values"} <= set(
        report.max_abs_diff_by_case
    )


def test_a_compact_model_passes_the_parity_gate(holdout, tmp_path):
    """A model made smaller by the training settings (INFERLOOP_MODEL_MAX_ITER / _MAX_LEAF_NODES)
    is compiled and gated like the default one."""
    from inferloop.core.settings import TrainingSettings

    frame, target = frame_with_missing_categoricals(6_000, seed=0)
    spec = SimpleNamespace(categorical_features=CATEGORICAL, numeric_features=NUMERIC, pii={})
    compact = TrainingSettings(model_max_iter=15, model_max_leaf_nodes=7)
    pipeline = build_pipeline(spec, compact).fit(frame, target)
    booster = booster_of(pipeline)
    assert booster.n_iter_ <= 15
    assert max(predictor.nodes["is_leaf"].sum() for (predictor,) in booster._predictors) <= 7
    compiled = CompiledModel(build_library(pipeline, tmp_path, threads=2).path)
    report = check_parity(pipeline, compiled, holdout, decision_threshold=0.5)
    assert report.passed, report.reason
    assert report.max_abs_diff <= 1e-6


def test_the_optimised_pipeline_scores_raw_features(pipeline, holdout, library):
    scores = OptimisedModel(encoder_of(pipeline), CompiledModel(library)).positive_scores(holdout)
    np.testing.assert_allclose(scores, pipeline.predict_proba(holdout)[:, 1], rtol=0, atol=1e-12)
    assert CompiledModel(library).positive_scores(np.empty((0, 6))).shape == (0,)


def test_the_edge_cases_hit_every_split_threshold_exactly(pipeline):
    booster = booster_of(pipeline)
    cases = edge_cases(booster, np.zeros((4, booster.n_features_in_)))
    thresholds = {
        (int(node["feature_idx"]), float(node["num_threshold"]))
        for (predictor,) in booster._predictors
        for node in predictor.nodes
        if not node["is_leaf"] and not node["is_categorical"]
    }
    rows = cases["at_split_thresholds"]
    hit = {(feature, value) for feature, value in thresholds if (rows[:, feature] == value).any()}
    assert hit == thresholds
    assert np.isnan(cases["missing_all_features"]).all()


def test_the_gate_catches_tl2cgens_own_categorical_routing(pipeline, holdout, tmp_path):
    """Compiled as treelite imports it (without the routing rewrite), the library sends missing
    and unseen categories the wrong way: the gate must fail it, saying by how much."""
    import treelite

    plain = treelite.sklearn.import_model(booster_of(pipeline))
    built = compile_library(plain, tmp_path, threads=2)
    report = check_parity(pipeline, CompiledModel(built.path), holdout, decision_threshold=0.5)
    assert not report.passed
    assert report.max_abs_diff > 0.01
    assert "max |Δprobability|" in report.reason
    assert report.max_abs_diff_by_case["missing_all_categoricals"] > 1e-6


def test_a_perturbed_library_fails_parity_with_its_reason(pipeline, holdout, tmp_path):
    from inferloop.tasks.model.optimised import treelite_model

    model = treelite_model(booster_of(pipeline))
    tree = model.get_tree_accessor(3)
    leaves = tree.get_field("leaf_value").copy()
    leaves[tree.get_field("node_type") == 0] += 1e-3  # small and systematic: probabilities move
    tree.set_field("leaf_value", leaves)
    built = compile_library(model, tmp_path, threads=2)
    report = check_parity(pipeline, CompiledModel(built.path), holdout, decision_threshold=0.5)
    assert not report.passed
    assert 1e-6 < report.max_abs_diff < 1e-2
    assert report.reason.startswith("max |Δprobability|")
    assert report.to_dict()["reason"] == report.reason


def test_without_a_c_compiler_the_build_says_what_to_do(pipeline, tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert c_compiler() is None
    with pytest.raises(OptimisedArtifactUnavailable, match=r"No C compiler .*install gcc"):
        build_library(pipeline, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_no_library_is_refused(tmp_path):
    fake = tmp_path / "optimised_model.so"
    fake.write_text("not a shared library")
    with pytest.raises(OptimisedArtifactUnavailable, match="not a loadable compiled model"):
        CompiledModel(fake)


def test_prediction_threads_never_exceed_the_cpus_available(library):
    assert CompiledModel(library, threads=64).threads == available_cpus()
    assert CompiledModel(library, threads=1).threads == 1
    assert 1 <= available_cpus() <= len(__import__("os").sched_getaffinity(0))


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_the_cgroup_quota_is_read_in_cpus(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == quota


def test_the_prepared_matrix_is_what_the_booster_sees(pipeline, holdout):
    matrix = prepared_features(pipeline, holdout)
    np.testing.assert_array_equal(booster_of(pipeline).predict_proba(matrix), pipeline.predict_proba(holdout))


def test_values_tl2cgen_would_read_as_missing_score_like_sklearn(pipeline, library):
    """18.499999999999996's low 32 bits are all ones, tl2cgen's "missing" int in its union."""
    from inferloop.tasks.model.optimised import without_missing_sentinel

    booster = booster_of(pipeline)
    age = NUMERIC.index("age") + len(CATEGORICAL)
    rows = np.zeros((4, booster.n_features_in_))
    rows[:, age] = [np.nextafter(18.5, 0), -np.nextafter(18.5, 0), 18.5, np.nan]
    moved = without_missing_sentinel(rows)
    assert moved[0, age] == np.nextafter(np.nextafter(18.5, 0), 0)  # one step toward zero
    assert moved[1, age] == -moved[0, age]
    assert moved[2, age] == 18.5 and np.isnan(moved[3, age])
    np.testing.assert_allclose(
        CompiledModel(library).positive_scores(rows), booster.predict_proba(rows)[:, 1], rtol=0, atol=1e-12
    )


def test_a_threshold_next_to_the_sentinel_is_refused(pipeline):
    import copy

    from inferloop.tasks.model.optimised import treelite_model

    booster = copy.deepcopy(booster_of(pipeline))
    nodes = booster._predictors[0][0].nodes
    split = np.flatnonzero((nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0))[0]
    nodes["num_threshold"][split] = np.nextafter(18.5, 0)
    with pytest.raises(OptimisedArtifactUnavailable, match="served by scikit-learn"):
        treelite_model(booster)


def test_inside_a_dask_worker_the_library_uses_the_workers_threads(library):
    from distributed import Client, LocalCluster

    from inferloop.tasks.model.optimised import prediction_threads

    def threads_of_a_library_loaded_there() -> tuple[int, int]:
        return prediction_threads(), CompiledModel(library).threads

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        assert client.submit(threads_of_a_library_loaded_there).result() == (1, 1)


def test_omp_num_threads_caps_the_threads_a_library_may_start(library, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what a Dask nanny gives each worker process
    assert available_cpus() == 1
    assert CompiledModel(library, threads=2).threads == 1


def test_an_optimised_model_shipped_to_a_worker_process_scores_there(pipeline, library, holdout):
    """As batch inference ships it to the stack's Dask workers: separate processes whose nanny
    sets OMP_NUM_THREADS=1 (a library loaded with more threads than that fails to load)."""
    from distributed import Client, LocalCluster

    model = OptimisedModel(encoder_of(pipeline), CompiledModel(library, threads=2))
    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        remote = client.submit(lambda m, rows: (type(m).__name__, m.predict_proba(rows)), model, holdout)
        kind, scores = remote.result(timeout=120)
    assert kind == "OptimisedModel"
    np.testing.assert_allclose(scores, pipeline.predict_proba(holdout), rtol=0, atol=1e-12)


def test_a_library_that_does_not_load_where_it_arrives_is_scored_by_the_pipeline(pipeline):
    import pickle

    from inferloop.tasks.model.optimised import arrived

    codes = encoder_of(pipeline)
    assert arrived(codes, b"not a shared library", pipeline) is pipeline
    assert pickle.loads(pickle.dumps(arrived(codes, b"junk", pipeline))).__class__ is pipeline.__class__
    with pytest.raises(OptimisedArtifactUnavailable, match="not a loadable compiled model"):
        arrived(codes, b"junk")  # no pipeline came along: the error, not a model that cannot score


def test_the_library_cache_drops_what_went_unused_and_keeps_the_rest(tmp_path):
    import os
    import time

    old, recent, crashed_write, other = (
        tmp_path / "old.so",
        tmp_path / "recent.so",
        tmp_path / "x.123.partial",
        tmp_path / "notes.txt",
    )
    for path in (old, recent, crashed_write, other):
        path.write_bytes(b"x")
    eight_days_ago = time.time() - 8 * 86_400
    for path in (old, crashed_write, other):
        os.utime(path, (eight_days_ago, eight_days_ago))
    kept = tmp_path / "kept.so"  # the library being loaded, however old its file
    kept.write_bytes(b"x")
    os.utime(kept, (eight_days_ago, eight_days_ago))

    assert sorted(prune_library_cache(tmp_path, keep=kept)) == sorted([old, crashed_write])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.so", "notes.txt", "recent.so"]
