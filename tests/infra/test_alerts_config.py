"""alerts.yaml: the committed file is valid and routes every alert kind; each mistake is one line
naming the entry and the fix."""

import pytest

from inferloop.runtime.alert_events import ALERT_EVENTS
from inferloop.stack.alerts_config import ALERTS_FILE, AlertsConfigError, load_alerts, parse_alerts


def valid() -> dict:
    return {
        "dedup_window_seconds": 60,
        "channels": {"hook": {"kind": "webhook", "url_env": "HOOK_URL"}},
        "alerts": {"refused": {"event": "inferloop.partition.refused", "channels": ["hook"]}},
    }


def test_the_committed_file_routes_every_alert_kind_and_holds_no_url():
    config = load_alerts(ALERTS_FILE)
    assert {alert.event for alert in config.alerts.values()} >= set(ALERT_EVENTS)
    assert "://" not in ALERTS_FILE.read_text().split("channels:")[1].split("alerts:")[0]
    assert all(channel.url_env for channel in config.channels.values() if channel.kind != "block")


def test_templates_say_what_happened_to_which_model_with_links():
    config = parse_alerts(valid())
    alert = config.alerts["refused"]
    assert "{{ event.payload.model }}" in config.subject("refused", alert)
    body = config.body(alert)
    for field in ("summary", "partition", "version", "prefect_run_url", "mlflow_version_url"):
        assert f"event.payload.{field}" in body
    assert "60 s" in body


def one_line_error(raw, match: str) -> str:
    with pytest.raises(AlertsConfigError, match=match) as error:
        parse_alerts(raw)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_a_url_in_the_file_is_refused_as_a_secret():
    raw = valid()
    raw["channels"]["hook"]["url"] = "https://hooks.example/T0/B0/XYZ"
    message = one_line_error(raw, "channel 'hook' gives its URL in the file")
    assert "url_env" in message and "XYZ" not in message


def test_an_unknown_channel_kind_names_the_choices():
    raw = valid()
    raw["channels"]["hook"]["kind"] = "pigeon"
    one_line_error(raw, r"channels.hook.kind: Input should be 'webhook', 'slack' or 'block'")


def test_a_webhook_without_url_env_says_to_set_it():
    raw = valid()
    del raw["channels"]["hook"]["url_env"]
    one_line_error(raw, "channel 'hook' \\(webhook\\) needs `url_env`")


def test_a_block_channel_needs_type_and_name():
    raw = valid()
    raw["channels"]["pager"] = {"kind": "block", "block": "oncall"}
    one_line_error(raw, "channel 'pager' needs `block: <block-type-slug>/<block-name>`")


def test_an_event_inferloop_does_not_emit_is_refused():
    raw = valid()
    raw["alerts"]["refused"]["event"] = "inferloop.partition.refuse"
    one_line_error(raw, "alert 'refused' listens to 'inferloop.partition.refuse'.*use one of")


def test_an_alert_to_an_undeclared_channel_is_refused():
    raw = valid()
    raw["alerts"]["refused"]["channels"] = ["hook", "pager"]
    one_line_error(raw, "alert 'refused' sends to unknown channel\\(s\\) pager; declared channels: hook")


def test_an_alert_without_channels_is_refused():
    raw = valid()
    raw["alerts"]["refused"]["channels"] = []
    one_line_error(raw, "alerts.refused.channels: List should have at least 1 item")


def test_a_misspelt_key_is_refused():
    raw = valid()
    raw["dedup_window"] = 5
    one_line_error(raw, "dedup_window: Extra inputs are not permitted")


def test_a_negative_window_is_refused():
    raw = valid()
    raw["dedup_window_seconds"] = -1
    one_line_error(raw, "dedup_window_seconds: Input should be greater than or equal to 0")


def test_a_file_that_is_not_yaml_names_the_line(tmp_path):
    path = tmp_path / "alerts.yaml"
    path.write_text("channels:\n  hook: [unclosed\n")
    with pytest.raises(AlertsConfigError, match=r"alerts.yaml is not valid YAML \(line \d+\)"):
        load_alerts(path)


def test_a_file_that_is_not_a_mapping_is_refused():
    one_line_error(["a"], "must be a mapping with `channels` and `alerts`")


def test_webhook_variables_are_not_mistaken_for_misspelt_settings():
    from inferloop.core.settings import unknown_settings

    environ = {"INFERLOOP_ALERT_WEBHOOK_URL": "https://hooks.example/x", "INFERLOOP_ALERT_OPS_URL": "y"}
    assert unknown_settings(environ) == []
