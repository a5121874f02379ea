"""The gate wired into the flows, on the generator's quality_faults days."""

import uuid
from pathlib import Path

import pytest

from inferloop.core.errors import InferloopError
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.feeds import write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.gate.validation import BatchRefusedError

pytestmark = pytest.mark.slow


@pytest.fixture
def faulty_feed(prefect_harness, workdir, monkeypatch):
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"gate-{uuid.uuid4().hex[:8]}")
    settings = load_settings()
    config = GeneratorConfig(scenario="quality_faults", days=8, rows_per_day=2_000)
    days = write_synthetic_feed.fn(lake_storage(settings.lake), settings.dataset, config)
    return settings, days, config


def test_scoring_quarantines_fault_rows_and_refuses_the_renamed_day(faulty_feed):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from inferloop.flows.batch_inference import batch_inference
    from inferloop.flows.train import train

    settings, days, _ = faulty_feed
    train(start=days[0], end=days[2])
    with pytest.raises(InferloopError, match=r"refused transactions_inference for 2026-01-06.*'amount'"):
        batch_inference(partition_date=days[3], end_date=days[5])

    storage = lake_storage(settings.lake)
    faulty = days[3]  # row-level faults: nulls, negative amounts, unknown categories
    manifest = storage.read_json(
        f"predictions/model={settings.registry.model_name}/version=1/date={faulty}/_manifest.json"
    )
    assert manifest["rows_quarantined"] > 0
    assert manifest["rows_in"] == manifest["rows_scored"] + manifest["rows_quarantined"] == 2_000
    quarantined = storage.read_table(f"quarantine/transactions_inference/date={faulty}").to_pandas()
    assert len(quarantined) == manifest["rows_quarantined"]
    assert quarantined["_failed_expectations"].str.len().gt(0).all()
    assert not storage.exists(
        f"predictions/model={settings.registry.model_name}/version=1/date={days[5]}/_manifest.json"
    )
    docs = Path(settings.gate.gx_runtime_dir / "data_docs" / "index.html")
    assert docs.exists()

    with get_client(sync_client=True) as client:
        # Only this test's keys, newest first: other tests in the session publish hundreds.
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["validation-transactions-inference", "scoring-transactions"])
            ),
            sort=ArtifactSort.CREATED_DESC,
            limit=50,
        )
    keys = {a.key for a in artifacts if a.key}
    assert {"validation-transactions-inference", "scoring-transactions"} <= keys
    refusal = [
        a for a in artifacts if a.key == "validation-transactions-inference" and "REFUSED" in str(a.data)
    ]
    assert refusal and "missing columns ['amount']" in str(refusal[0].data)


def test_training_on_a_refused_day_produces_no_model(faulty_feed):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from inferloop.flows.train import train

    settings, days, _ = faulty_feed
    with pytest.raises(BatchRefusedError, match="missing columns \\['amount'\\]"):
        train(start=days[4], end=days[6])
    with pytest.raises(MlflowException):
        MlflowClient(settings.registry.tracking_uri).get_registered_model(settings.registry.model_name)
