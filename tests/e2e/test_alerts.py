"""Alerts end to end: the committed alerts.yaml applied to a real Prefect server (the session's
test harness, whose ephemeral server runs the triggers and actions services), events from the
flows, and a real HTTP receiver on loopback that records every POST the automations send."""

import json
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inferloop.runtime.alert_events import (
    ALERT_EVENTS,
    PARTITION_REFUSED,
    emit_alert,
)
from inferloop.stack.alerts import AUTOMATION_PREFIX, BLOCK_PREFIX, apply_alerts
from inferloop.stack.alerts_config import load_alerts, parse_alerts

pytestmark = pytest.mark.slow

SECRET_TOKEN = "T0KEN-" + uuid.uuid4().hex  # the secret part of the webhook URLs
TRACKING_PASSWORD = "tracking-" + uuid.uuid4().hex
SETTLE_SECONDS = 4  # after the expected messages, how long a duplicate gets to show up


class Receiver:
    """A loopback HTTP server keeping every POST: (channel, parsed JSON body)."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path.split("/")[1], body.decode()))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, channel: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{channel}/{SECRET_TOKEN}"

    def messages(self, channel: str, model: str) -> list[dict]:
        return [json.loads(body) for name, body in list(self.received) if name == channel and model in body]

    def wait(self, channel: str, model: str, count: int, timeout: float = 90) -> list[dict]:
        """The messages about `model` once `count` have arrived and no more came for a while."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages(channel, model)) < count:
            time.sleep(0.2)
        time.sleep(SETTLE_SECONDS)
        return self.messages(channel, model)


@pytest.fixture(scope="module")
def receiver(prefect_harness):
    """The committed alerts.yaml applied with both channels pointed at the receiver; afterwards
    its automations are removed, so later tests of the session notify nobody."""
    receiver = Receiver()
    env = {
        "INFERLOOP_ALERT_WEBHOOK_URL": receiver.url("hook"),
        "INFERLOOP_ALERT_SLACK_URL": receiver.url("slack"),
    }
    applied = apply_alerts(load_alerts(), env)
    assert not applied.skipped
    time.sleep(2)  # the triggers service reloads automations on change
    yield receiver
    apply_alerts(parse_alerts({"channels": {}, "alerts": {}}), {})
    receiver.server.shutdown()


def drain_events() -> None:
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()


def subject(message: dict) -> str:
    return message.get("subject") or message["text"].split("\n")[0]


def test_each_alert_kind_arrives_once_per_incident(receiver):
    model = f"kinds-{uuid.uuid4().hex[:8]}"
    for event in ALERT_EVENTS:
        emit_alert(event, model, f"{event} happened", version="4", partition="2026-01-06", reasons=["why"])
    drain_events()

    messages = receiver.wait("hook", model, len(ALERT_EVENTS))
    config = load_alerts()
    titles = sorted(config.subject(name, a).split(": ")[0] for name, a in config.alerts.items())
    assert sorted(subject(m).split(": ")[0] for m in messages) == titles  # each kind exactly once
    for message in messages:
        assert message["subject"].endswith(f": {model}")
        assert f"Model: {model} version 4; partition 2026-01-06" in message["body"]
        assert "Why: why" in message["body"]
    slack = receiver.messages("slack", model)
    routed_to_slack = [a for a in config.alerts.values() if "team-slack" in a.channels]
    assert len(slack) == len(routed_to_slack)
    assert all(set(m) == {"text"} for m in slack)  # the Slack incoming-webhook shape


def test_a_storm_of_refusals_sends_one_alert_per_model(receiver):
    storm, other = f"storm-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    for day in range(1, 11):
        emit_alert(PARTITION_REFUSED, storm, "refused", version="2", partition=f"2026-01-{day:02d}")
    emit_alert(PARTITION_REFUSED, other, "refused", version="1", partition="2026-01-01")
    drain_events()

    assert len(receiver.wait("hook", storm, 1)) == 1
    assert len(receiver.messages("slack", storm)) == 1
    assert len(receiver.wait("hook", other, 1)) == 1  # the window is per model


def test_no_secret_reaches_a_payload_or_the_server(receiver):
    from prefect import get_client

    model = f"secret-{uuid.uuid4().hex[:8]}"
    emit_alert(
        PARTITION_REFUSED,
        model,
        "refused",
        version="3",
        tracking_uri=f"http://alice:{TRACKING_PASSWORD}@127.0.0.1:5000",
    )
    drain_events()
    (message,) = receiver.wait("hook", model, 1)
    assert "http://127.0.0.1:5000/#/models/" in message["body"]  # the link, without its user
    everything = "".join(body for _, body in receiver.received)
    assert TRACKING_PASSWORD not in everything and SECRET_TOKEN not in everything
    with get_client(sync_client=True) as client:
        block = client.read_block_document_by_name(
            f"{BLOCK_PREFIX}team-webhook", "custom-webhook", include_secrets=False
        )
    assert SECRET_TOKEN not in json.dumps(block.data, default=str)  # the UI shows it masked


def test_applying_twice_changes_nothing_and_the_file_is_the_truth(receiver):
    from prefect import get_client

    env = {
        "INFERLOOP_ALERT_WEBHOOK_URL": receiver.url("hook"),
        "INFERLOOP_ALERT_SLACK_URL": receiver.url("slack"),
    }
    config = load_alerts()
    again = apply_alerts(config, env)
    assert set(again.automations.values()) == {"unchanged"}

    def ours() -> list[str]:
        with get_client(sync_client=True) as client:
            return sorted(a.name for a in client.read_automations() if a.name.startswith(AUTOMATION_PREFIX))

    assert ours() == sorted(AUTOMATION_PREFIX + name for name in config.alerts)
    fewer = config.model_copy(deep=True)
    del fewer.alerts["retrain-started"]
    assert apply_alerts(fewer, env).deleted == ["retrain-started"]
    assert AUTOMATION_PREFIX + "retrain-started" not in ours()
    # without the URL variables the saved blocks are kept: a redeploy elsewhere breaks nothing
    restored = apply_alerts(config, {})
    assert restored.automations["retrain-started"] == "created" and not restored.skipped
    # a channel whose variable is unset is said to be inactive, and so is its alert; the server
    # then holds only what this file makes active
    lonely = parse_alerts(
        {
            "channels": {"pager": {"kind": "webhook", "url_env": "INFERLOOP_TEST_UNSET_URL"}},
            "alerts": {"paged": {"event": PARTITION_REFUSED, "channels": ["pager"]}},
        }
    )
    alone = apply_alerts(lonely, {})
    assert alone.skipped == [
        "channel pager: set INFERLOOP_TEST_UNSET_URL to its webhook URL and redeploy",
        "alert paged: none of its channels is configured",
    ]
    assert sorted(alone.deleted) == sorted(config.alerts) and ours() == []
    assert set(apply_alerts(config, env).automations.values()) == {"created"}
    time.sleep(2)


@pytest.fixture
def faulty_feed(receiver, workdir, monkeypatch):
    from inferloop.core.settings import load_settings
    from inferloop.core.storage import lake_storage
    from inferloop.tasks.data.feeds import write_synthetic_feed
    from inferloop.tasks.data.synthetic import GeneratorConfig

    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"alerts-{uuid.uuid4().hex[:8]}")
    # GX's own verdict once per file schema, as in tests/flows: the renamed column is a schema of
    # its own, so GX still sees it; tests/tasks/gate covers GX on every partition.
    monkeypatch.setenv("INFERLOOP_GX_SCOPE", "schema")
    settings = load_settings()
    config = GeneratorConfig(scenario="quality_faults", days=6, rows_per_day=600)
    days = write_synthetic_feed.fn(lake_storage(settings.lake), settings.dataset, config)
    return settings, days


def test_the_flows_alert_on_refusal_retrain_promotion_and_rollback(receiver, faulty_feed):
    from inferloop.core.errors import InferloopError
    from inferloop.flows.batch_inference import batch_inference
    from inferloop.flows.promote import promote, rollback
    from inferloop.flows.retrain import retrain
    from inferloop.flows.train import train

    settings, days = faulty_feed
    model = settings.registry.model_name
    train(start=days[0], end=days[2])  # v1, @champion
    with pytest.raises(InferloopError, match="refused"):
        batch_inference(partition_date=days[3], end_date=days[5])
    # a retrain whose window ends on the partition with the renamed column starts and fails (the
    # training gate refuses it); the next one that day is suppressed by the storm guard (the
    # failed one counts)
    busy_day = days[5] + timedelta(days=1)
    assert retrain(day=busy_day, force=True).outcome.startswith("not retrained")
    assert retrain(day=busy_day, force=True).action == "suppressed"
    challenger = train(start=days[0], end=days[1])  # v2, @challenger
    promote(challenger_version=challenger.version, mode="manual", decided_by="alerts test")
    rollback(decided_by="alerts test")
    drain_events()

    by_title = {
        subject(m).split(": ")[0].removeprefix("[inferloop] "): m for m in receiver.wait("hook", model, 6)
    }
    assert len(receiver.messages("hook", model)) == 6, [subject(m) for m in receiver.messages("hook", model)]
    refused = by_title["partition refused by the data gate"]["body"]
    assert "partition 2026-01-06" in refused and "version 1" in refused
    assert "/runs/flow-run/" in refused  # the link to the batch_inference run
    suppressed = by_title["retrain suppressed by the storm guard"]["body"]
    assert f"1 retrain(s) already on {busy_day}" in suppressed
    assert f"retrain started for {busy_day}" in by_title["retrain started"]["body"]
    assert "not retrained: The data-quality gate refused" in by_title["retrain failed"]["body"]
    assert f"version {challenger.version}" in by_title["new champion"]["body"]
    assert "is @champion again (rollback)" in by_title["champion rolled back"]["body"]
