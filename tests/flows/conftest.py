"""What the flow tests share: the session's `pool` models (tests/fixtures/pool.py: `before` and
`after`, trained once on `FEED`), and for each test its own lake in a temporary directory and its
own registered model name on the session's MLflow server, holding copies of those versions.
"""

import uuid
from datetime import date

import pytest

from tests.fixtures.pool import (  # noqa: F401  (the flow tests import them from here)
    AFTER,
    AFTER_BOTH,
    BEFORE,
    DAYS,
    FEED,
    ROWS_PER_DAY,
    TO_SCORE,
    aliases,
    register,
    write_feed,
)


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


@pytest.fixture
def champion(pool, lake, feed) -> list[date]:
    """A copy of `before` as this test's @champion, on `FEED`; returns three days to score."""
    register(lake, pool.before, "champion")
    return TO_SCORE
