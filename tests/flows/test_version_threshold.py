"""Each version labels rows at its own decision threshold (version tag `inferloop.decision_threshold`),
not the settings' one: batch scoring's predicted_label and monitoring's threshold-dependent metrics.
(Serving: tests/serving/test_endpoint.py; promotion and hindsight compare through
`paired_difference`, tests/tasks/model/test_comparison.py.)"""

import pytest
from mlflow import MlflowClient

from inferloop.core import catalog
from inferloop.core.registry import THRESHOLD_TAG
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.batch_inference import batch_inference
from inferloop.flows.monitor import monitor
from inferloop.tasks.monitoring.performance import label_metrics, labelled_predictions
from tests.flows.conftest import DAYS, register

OWN_THRESHOLD = 0.01  # far from the settings' 0.5: the two label many rows differently
EVENT_DAY, DAY = DAYS[5], DAYS[6]  # EVENT_DAY's labels arrive on DAY


def test_scoring_and_monitoring_label_rows_at_the_versions_own_threshold(pool, lake, feed):
    settings = load_settings()
    name, spec = settings.registry.model_name, settings.dataset
    version = register(lake, pool.before, "champion")
    MlflowClient(lake).set_model_version_tag(name, version, THRESHOLD_TAG, str(OWN_THRESHOLD))

    batch_inference(partition_date=EVENT_DAY, end_date=DAY)
    monitor(day=DAY)

    storage = lake_storage(settings.lake)
    scored = storage.read_table(catalog.predictions(name, version, EVENT_DAY)).to_pandas()
    assert (scored["predicted_label"] == (scored["score"] >= OWN_THRESHOLD)).all()
    assert (scored["predicted_label"] != (scored["score"] >= 0.5)).any()

    joined = labelled_predictions(storage, spec, name, version, [EVENT_DAY])
    target, scores = joined["target"].to_numpy(), joined["score"].to_numpy(float)
    own, setting = label_metrics(target, scores, OWN_THRESHOLD), label_metrics(target, scores, 0.5)
    assert own["accuracy"] != pytest.approx(setting["accuracy"])
    report = storage.read_json(catalog.monitoring_report(spec.name, DAY))
    for performance in (report["day_performance"], report["rolling_performance"]):
        assert performance["model_version"] == version
        for metric in ("accuracy", "balanced_accuracy", "f1"):
            assert performance["metrics"][metric] == pytest.approx(own[metric])
