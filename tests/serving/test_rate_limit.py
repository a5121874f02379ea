"""The per-key rate limit: the token bucket on a clock the test moves, then the real app in front
of the session's MLflow server (429 with Retry-After, per key, counted in /metrics)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferloop.serving.rate_limit import RateLimiter

KEYS = {"client": "score", "other": "score", "operator": "admin"}  # name -> scope, for the app test


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gets_its_burst_at_once_then_waits_for_the_refill():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.retry_after("a") for _ in range(3)] == [None] * 3
    assert limiter.retry_after("a") == 1  # half a second to the next token, rounded up to whole seconds
    clock.now += 0.5
    assert limiter.retry_after("a") is None
    clock.now += 60  # a long pause refills the bucket to its burst, no further
    assert [limiter.retry_after("a") for _ in range(4)] == [None, None, None, 1]


def test_retry_after_is_the_whole_seconds_until_a_token_is_back():
    clock = Clock()
    limiter = RateLimiter(rate=0.1, burst=1, clock=clock)  # one request per 10 s
    assert limiter.retry_after("a") is None
    assert limiter.retry_after("a") == 10
    clock.now += 2.5
    assert limiter.retry_after("a") == 8  # 7.5 s left, rounded up
    clock.now += 7.5
    assert limiter.retry_after("a") is None


def test_keys_have_buckets_of_their_own():
    limiter = RateLimiter(rate=1.0, burst=1, clock=Clock())
    assert limiter.retry_after("a") is None and limiter.retry_after("a") == 1
    assert limiter.retry_after("b") is None


def test_a_rate_of_zero_is_no_limit():
    limiter = RateLimiter(rate=0.0, burst=1, clock=Clock())
    assert all(limiter.retry_after("a") is None for _ in range(10_000))


@given(
    rate=st.floats(0.1, 1000),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=100),
)
def test_no_window_admits_more_than_burst_plus_rate_times_its_length(rate, burst, gaps):
    """The bucket's guarantee, for any arrival times; and a refused request is told to wait."""
    clock = Clock()
    limiter = RateLimiter(rate, burst, clock=clock)
    admitted = []
    for gap in gaps:
        clock.now += gap
        wait = limiter.retry_after("a")
        if wait is None:
            admitted.append(clock.now)
        else:
            assert isinstance(wait, int) and 1 <= wait <= math.ceil(1 / rate)
    for first in range(len(admitted)):
        for last in range(first, len(admitted)):
            span = admitted[last] - admitted[first]
            assert last - first + 1 <= burst + rate * span + 1e-6


# -- through the real app --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_key_over_its_rate_gets_429_with_retry_after_while_other_keys_are_served(
    pool, mlflow_server, tmp_path, monkeypatch, caplog
):
    from inferloop.serving.keys import add_key
    from tests.fixtures.pool import register
    from tests.serving.conftest import feed_records, in_process_endpoint, unique_model_name

    name = unique_model_name("rate")
    register(mlflow_server, pool.before, "champion", model_name=name)
    keys = {k: add_key(tmp_path / "keys.json", k, [scope]) for k, scope in KEYS.items()}
    monkeypatch.setenv("INFERLOOP_STORAGE_URI", (tmp_path / "lake").as_uri())
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", name)
    caplog.set_level("DEBUG")
    payload = {"dataframe_records": feed_records(1)}
    # One request per 100 s: no token comes back while the test runs, however slow the machine.
    with in_process_endpoint(
        tmp_path, monkeypatch, serve_rate_per_second="0.01", serve_rate_burst="2"
    ) as app:

        def post(key: str):
            return app.post("/invocations", json=payload, headers={"Authorization": f"Bearer {keys[key]}"})

        assert [post("client").status_code for _ in range(2)] == [200, 200]  # the burst
        refused = post("client")
        assert refused.status_code == 429
        wait = refused.headers["Retry-After"]
        assert wait.isdigit() and 1 <= int(wait) <= 100
        error = refused.json()["error"]
        assert "'client'" in error and f"retry after {wait} s" in error
        assert "INFERLOOP_SERVE_RATE_PER_SECOND" in error and keys["client"] not in error
        assert post("other").status_code == 200  # a bucket per key

        metrics = app.get("/metrics", headers={"Authorization": f"Bearer {keys['operator']}"}).text
    assert 'inferloop_serve_rate_limited_total{key="client"} 1.0' in metrics
    assert 'inferloop_serve_requests_total{status="429"} 1.0' in metrics
    assert 'inferloop_serve_requests_total{status="200"} 3.0' in metrics
    for key in keys.values():
        assert key not in caplog.text
