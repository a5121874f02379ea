"""What an alert event carries: model, version, partition and links, never credentials."""

from inferloop.runtime.alert_events import (
    PARTITION_REFUSED,
    AlertEvent,
    mlflow_version_url,
    without_credentials,
)


def test_links_never_carry_the_tracking_servers_credentials():
    url = mlflow_version_url("https://reader:s3cret@mlflow.example:5000/", "fraud model", "7")
    assert url == "https://mlflow.example:5000/#/models/fraud%20model/versions/7"
    assert "s3cret" not in url and "reader" not in url
    assert (
        without_credentials("http://127.0.0.1:4200/runs/flow-run/1")
        == "http://127.0.0.1:4200/runs/flow-run/1"
    )


def test_a_store_without_a_ui_gets_no_mlflow_link():
    assert mlflow_version_url("sqlite:////tmp/mlflow.db", "m", "3") == ""
    assert mlflow_version_url("http://127.0.0.1:5000", "m", "") == ""


def test_the_event_groups_by_model_and_names_version_and_partition():
    alert = AlertEvent(PARTITION_REFUSED, "m", "refused", version="3", partition="2026-01-06", reasons=("a",))
    assert alert.resource() == {
        "prefect.resource.id": "inferloop.model.m",
        "prefect.resource.name": "m",
        "inferloop.model": "m",
        "inferloop.model.version": "3",
        "inferloop.partition": "2026-01-06",
    }
    payload = alert.payload()
    assert payload["reasons"] == ["a"]
    assert payload["prefect_run_url"] == payload["mlflow_version_url"] == "n/a"


def test_a_replay_mutes_alerts_and_only_inside_its_block(monkeypatch):
    import prefect.events

    from inferloop.runtime.alert_events import alerts_muted, emit_alert_event

    sent = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **event: sent.append(event["event"]))
    alert = AlertEvent(PARTITION_REFUSED, "m", "refused")
    with alerts_muted("replay"):
        emit_alert_event(alert)
    assert sent == []
    emit_alert_event(alert)
    assert sent == [PARTITION_REFUSED]
