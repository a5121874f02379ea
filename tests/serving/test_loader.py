"""Model versions after the first load in a helper process, started at the first swap: the model
that comes back scores exactly as one loaded in place, and a helper that died is replaced."""

import os
import signal

import numpy as np
import pandas as pd
import pytest

from inferloop.core.owners import pid_alive
from inferloop.core.registry import Registry
from inferloop.serving import loader as loader_module
from inferloop.serving.loader import HELPER_NICENESS, ModelLoader
from inferloop.tasks.data.feeds import prepare_features
from inferloop.tasks.model.optimised import runtime_of
from inferloop.tasks.model.optimised_artifact import scoring_model
from tests.fixtures.pool import register
from tests.serving.conftest import feed_records, unique_model_name

pytestmark = pytest.mark.slow  # starts a process that imports MLflow and scikit-learn


def helper_pids(loader: ModelLoader) -> list[int]:
    return list(loader._helper._processes) if loader._helper else []


def test_versions_after_the_first_load_in_the_helper_and_score_as_loaded_in_place(
    pool, mlflow_server, settings, monkeypatch
):
    name = unique_model_name("loader")
    first = register(mlflow_server, pool.before, "champion", model_name=name)
    second = register(mlflow_server, pool.after, model_name=name)
    registry = Registry(mlflow_server, name)
    features = prepare_features(pd.DataFrame(feed_records(200)), settings.dataset)
    loader = ModelLoader(registry)
    try:
        loader(registry.get_version(first))  # in this process: nothing is served yet
        assert helper_pids(loader) == []  # an endpoint that never swaps has no helper

        def not_here(registry, ref):
            raise AssertionError("a load after the first ran in the endpoint's process")

        monkeypatch.setattr(loader_module, "scoring_model", not_here)  # the helper has its own
        for version in (second, first):
            ref = registry.get_version(version)
            loaded, in_place = loader(ref), scoring_model(registry, ref)
            assert runtime_of(loaded) == runtime_of(in_place)
            np.testing.assert_array_equal(loaded.predict_proba(features), in_place.predict_proba(features))
        assert os.getpriority(os.PRIO_PROCESS, helper_pids(loader)[0]) == HELPER_NICENESS  # after its first

        (dead,) = helper_pids(loader)
        os.kill(dead, signal.SIGKILL)
        monkeypatch.undo()  # the load the helper died in runs here; the next one starts a new helper
        for version in (second, first):
            ref = registry.get_version(version)
            np.testing.assert_array_equal(
                loader(ref).predict_proba(features), scoring_model(registry, ref).predict_proba(features)
            )
        assert helper_pids(loader) and dead not in helper_pids(loader)
    finally:
        loader.close()


def test_closing_ends_the_helper_and_later_loads_run_here(pool, mlflow_server):
    name = unique_model_name("loader-closed")
    versions = [register(mlflow_server, source, model_name=name) for source in (pool.before, pool.after)]
    registry = Registry(mlflow_server, name)
    loader = ModelLoader(registry)
    first, second = (registry.get_version(version) for version in versions)
    loader(first)
    loader(second)  # the first swap: in the helper
    (helper,) = helper_pids(loader)
    loader.close()  # as the endpoint stops: at once, even with a load running
    assert not pid_alive(helper)
    assert loader(first) is not None and helper_pids(loader) == []  # no new helper after close
