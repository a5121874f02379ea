"""What the flow tests share: one synthetic feed and two models trained on it once per session.

The feed has a concept change halfway (`FEED`). The train flow fits two models on it, once,
under a pool model name: `before` on days before the change, `after` on days after it. A test
that needs a registry state (a champion, a challenger) gets its own registered model name and
copies of those versions (a registry call, not a training run), and its own lake in a temporary
directory: tests never see each other's aliases, predictions or monitoring records.
"""

import uuid
from dataclasses import dataclass, replace
from datetime import date

import pytest

from inferloop.tasks.data.synthetic import GeneratorConfig

ROWS_PER_DAY = 500
# Days 0..7 follow the old fraud pattern, days 8..15 the new one (the generator is deterministic:
# every test's lake holds the same rows the pool models were trained on).
FEED = GeneratorConfig(scenario="concept_drift", days=16, rows_per_day=ROWS_PER_DAY, change_day=8)
DAYS = [FEED.day(i) for i in range(FEED.days)]
BEFORE = (DAYS[0], DAYS[4])  # the training window of the `before` model
AFTER = (DAYS[9], DAYS[13])  # of the `after` model
AFTER_BOTH = (DAYS[14], DAYS[15])  # labelled days neither model was fitted on


@dataclass(frozen=True)
class Pool:
    """The train flow's two results (ModelVersionRef): `before` registered first, `after` second."""

    before: object
    after: object


def write_feed(config: GeneratorConfig = FEED) -> list[date]:
    """The synthetic feed into the lake the current settings point at."""
    from inferloop.core.settings import load_settings
    from inferloop.core.storage import lake_storage
    from inferloop.tasks.data.feeds import write_synthetic_feed

    settings = load_settings()
    return write_synthetic_feed.fn(lake_storage(settings.lake), settings.dataset, config)


@pytest.fixture
def lake(prefect_harness, mlflow_server, tmp_path, monkeypatch):
    """This test's own lake and registered model name on the shared MLflow server; returns the
    tracking URI. The lake starts empty (`feed` writes `FEED` into it)."""
    monkeypatch.setenv("INFERLOOP_STORAGE_URI", (tmp_path / "lake").as_uri())
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"flows-{uuid.uuid4().hex[:10]}")
    # GX's own verdict once per file schema (the row checks still cover every row): the flows
    # under test compose the gate, whose GX details tests/tasks/gate covers.
    monkeypatch.setenv("INFERLOOP_GX_SCOPE", "schema")
    return mlflow_server


@pytest.fixture
def feed(lake) -> list[date]:
    """This test's lake holding `FEED`."""
    return write_feed()


@pytest.fixture(scope="session")
def pool(prefect_harness, mlflow_server, tmp_path_factory) -> Pool:
    """`before` and `after`, trained once by the train flow under a pool model name and lake
    that no test changes."""
    from inferloop.flows.train import train

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INFERLOOP_STORAGE_URI", (tmp_path_factory.mktemp("pool") / "lake").as_uri())
        patch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
        patch.setenv("INFERLOOP_MODEL_NAME", f"flows-pool-{uuid.uuid4().hex[:8]}")
        patch.setenv("INFERLOOP_GX_SCOPE", "schema")
        # The feed up to AFTER's last day, so that `after` is trained on the flow's default
        # window: the latest `train_window_days` labelled days.
        patch.setenv("INFERLOOP_TRAIN_WINDOW_DAYS", str((AFTER[1] - AFTER[0]).days + 1))
        write_feed(replace(FEED, days=DAYS.index(AFTER[1]) + 1))
        return Pool(before=train(*BEFORE), after=train())


@pytest.fixture
def champion(pool, lake, feed) -> list[date]:
    """A copy of `before` as this test's @champion, on `FEED`; returns three days to score."""
    register(lake, pool.before, "champion")
    return DAYS[5:8]


def register(tracking_uri: str, source, *aliases: str) -> str:
    """A copy of `source` as the next version of this test's model, with `aliases` set on it."""
    from mlflow import MlflowClient

    from inferloop.core.settings import load_settings

    client = MlflowClient(tracking_uri)
    name = load_settings().registry.model_name
    version = str(client.copy_model_version(source.uri, name).version)
    for alias in aliases:
        client.set_registered_model_alias(name, alias, version)
    return version


def aliases(tracking_uri: str) -> dict[str, str]:
    """Alias -> version of this test's registered model."""
    from mlflow import MlflowClient

    from inferloop.core.settings import load_settings

    model = MlflowClient(tracking_uri).get_registered_model(load_settings().registry.model_name)
    return {alias: str(version) for alias, version in model.aliases.items()}
