"""The online endpoint's events: the stale alert once per registry outage, only while a model is served,
and only to a configured Prefect server."""

import pytest

from inferloop.core.registry import ModelVersionRef
from inferloop.runtime.alert_events import (
    SERVING_DEGRADED,
    SERVING_RECOVERED,
    SERVING_STALE,
    SERVING_VERSION_CHANGED,
)
from inferloop.serving.champion import ServedModel
from inferloop.serving.events import DegradedAlert, StaleAlert, VersionChangedEvent


@pytest.fixture
def sent(monkeypatch) -> list:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    return []


def watcher(sent: list, version: str | None = "3") -> StaleAlert:
    return StaleAlert(
        "fraud",
        version=lambda: version,
        problem=lambda: "MLflow at http://127.0.0.1:5000 did not answer",
        emit=lambda *args, **kwargs: sent.append((args, kwargs)),
    )


def test_one_alert_per_outage_and_a_new_one_after_recovery(sent):
    alert = watcher(sent)
    for ok in (True, False, False, False, True, False):
        alert(ok)
    assert len(sent) == 2
    (event, model, summary), details = sent[0]
    assert (event, model, details["version"]) == (SERVING_STALE, "fraud", "3")
    assert "stale model" in summary and "did not answer" in details["reasons"][0]


def test_nothing_is_sent_before_a_model_is_served(sent):
    alert = watcher(sent, version=None)
    alert(False)
    assert sent == []


def test_without_a_prefect_server_nothing_is_sent(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    sent = []
    watcher(sent)(False)
    assert sent == []


class Gauge:
    value = None

    def set(self, value):
        self.value = value


def test_each_change_of_the_degraded_state_is_an_event_and_the_gauge(sent):
    gauge = Gauge()
    alert = DegradedAlert("fraud", gauge, emit=lambda *args, **kwargs: sent.append((args, kwargs)))
    ref = ModelVersionRef("fraud", "4", "run")
    alert(ServedModel(ref, None, "breach confirmed on 2026-03-14: drift (policy fallback)"))
    assert gauge.value == 1
    alert(ServedModel(ref, None))
    assert gauge.value == 0
    (entered, model, summary), details = sent[0]
    assert (entered, model, details["version"]) == (SERVING_DEGRADED, "fraud", "4")
    assert "policy fallback" in summary and details["reasons"] == [
        "breach confirmed on 2026-03-14: drift (policy fallback)"
    ]
    assert sent[1][0][0] == SERVING_RECOVERED and sent[1][1]["reasons"] == []


def test_a_change_of_the_served_version_is_an_event(sent, monkeypatch):
    changed = VersionChangedEvent("fraud", emit=lambda *args, **kwargs: sent.append((args, kwargs)))
    first, second = (
        ServedModel(ModelVersionRef("fraud", "4", "a"), None),
        ServedModel(ModelVersionRef("fraud", "5", "b"), None),
    )
    changed(None, first)
    changed(first, second)
    assert [(args[0], kwargs["version"]) for args, kwargs in sent] == [
        (SERVING_VERSION_CHANGED, "4"),
        (SERVING_VERSION_CHANGED, "5"),
    ]
    assert "now serves fraud v5 (before: v4)" in sent[1][0][2]
    monkeypatch.delenv("PREFECT_API_URL")  # no Prefect server: nothing to tell
    changed(second, first)
    assert len(sent) == 2
