"""train -> batch_inference through real Prefect, a real MLflow server and both lake kinds."""

import uuid

import pytest

from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.feeds import write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig

pytestmark = pytest.mark.slow
ROWS_PER_DAY = 1_000


@pytest.fixture(params=["local", "s3"])
def loop_env(request, prefect_harness, mlflow_server, workdir, monkeypatch):
    """Settings for one loop: its own model name on the shared MLflow server, its own lake."""
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"fraud-{request.param}-{uuid.uuid4().hex[:8]}")
    # GX's own verdict once per file schema (the row checks still cover every row): this test is
    # about the loop on both lake kinds; tests/tasks/gate covers GX on every partition.
    monkeypatch.setenv("INFERLOOP_GX_SCOPE", "schema")
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        monkeypatch.setenv("INFERLOOP_STORAGE_URI", f"s3://{bucket}/lake")
        monkeypatch.setenv("INFERLOOP_S3_ENDPOINT_URL", request.getfixturevalue("s3_endpoint"))
    settings = load_settings()
    days = write_synthetic_feed.fn(
        lake_storage(settings.lake), settings.dataset, GeneratorConfig(days=10, rows_per_day=ROWS_PER_DAY)
    )
    return settings, days


def test_train_registers_champion_and_inference_uses_it(loop_env):
    from mlflow import MlflowClient

    from inferloop.flows.batch_inference import batch_inference
    from inferloop.flows.train import train

    settings, days = loop_env
    client = MlflowClient(settings.registry.tracking_uri)
    first = train(start=days[0], end=days[6])
    assert first.alias == "champion"
    assert client.get_model_version_by_alias(first.name, "champion").version == first.version
    run = client.get_run(first.run_id)
    assert run.data.metrics["holdout_roc_auc"] > 0.75
    assert run.data.params["window_start"] == str(days[0])
    assert run.inputs.dataset_inputs, "training data lineage is logged"

    manifests = batch_inference(partition_date=days[7], end_date=days[9])
    assert [m.rows_scored for m in manifests] == [ROWS_PER_DAY] * 3
    assert {m.model_version for m in manifests} == {first.version}
    output = (
        lake_storage(settings.lake)
        .read_table(f"predictions/model={first.name}/version={first.version}/date={days[8]}")
        .to_pandas()
    )
    assert len(output) == ROWS_PER_DAY and set(output["model_run_id"]) == {first.run_id}

    second = train(start=days[1], end=days[7])
    assert second.alias == "challenger" and second.version != first.version
    rerun = batch_inference(partition_date=days[7])
    assert rerun[0].reused and rerun[0].model_version == first.version
    both = batch_inference(partition_date=days[9], shadow=True)
    assert {(m.role, m.model_version, m.reused) for m in both} == {
        ("champion", first.version, True),
        ("shadow", second.version, False),
    }

    # A person moves @champion (as in the MLflow UI): the next run uses it.
    client.set_registered_model_alias(second.name, "champion", second.version)
    moved = batch_inference(partition_date=days[7])
    assert not moved[0].reused and moved[0].model_version == second.version
