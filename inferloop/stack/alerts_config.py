"""`alerts.yaml`: which inferloop events notify which channel, read and checked before anything
is sent to Prefect. Each problem is one line naming the file, the entry and what to do.

A channel is a Prefect notification block: `webhook` (a generic JSON POST), `slack` (a
Slack-compatible incoming webhook: Slack, Mattermost, Rocket.Chat take `{"text": ...}`) or `block`
(any notification block already saved on the server: Teams, PagerDuty, email...). Webhook URLs
are secrets: the file names the environment variable that holds one (`url_env`), never the URL.
"""

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inferloop.core.errors import InferloopError
from inferloop.core.settings import REPO_ROOT
from inferloop.runtime.alert_events import (
    ALERT_EVENTS,
    DEGRADED,
    SERVING_DEGRADED,
    SERVING_RECOVERED,
    SERVING_VERSION_CHANGED,
)

ALERTS_FILE = REPO_ROOT / "alerts.yaml"
KNOWN_EVENTS = (*ALERT_EVENTS, DEGRADED, SERVING_DEGRADED, SERVING_RECOVERED, SERVING_VERSION_CHANGED)

DEFAULT_SUBJECT = "[inferloop] TITLE: {{ event.payload.model }}"
DEFAULT_BODY = """{{ event.payload.summary }}
Model: {{ event.payload.model }} version {{ event.payload.version }}; partition {{ event.payload.partition }}
Why: {{ event.payload.reasons | join('; ') or 'n/a' }}
Prefect run: {{ event.payload.prefect_run_url }}
MLflow version: {{ event.payload.mlflow_version_url }}
Event {{ event.event }} at {{ event.occurred }}WINDOW"""


class AlertsConfigError(InferloopError, ValueError):
    """alerts.yaml is not valid; the message names the entry and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Channel(_Strict):
    kind: Literal["webhook", "slack", "block"]
    url_env: str = Field("", description="Environment variable holding the webhook URL")
    block: str = Field("", description="`block-type-slug/block-name` of a saved notification block")


class Alert(_Strict):
    event: str
    channels: list[str] = Field(min_length=1)
    title: str = ""
    dedup_window_seconds: int | None = Field(None, ge=0)
    subject: str = ""
    body: str = ""


class AlertsConfig(_Strict):
    dedup_window_seconds: int = Field(600, ge=0)
    channels: dict[str, Channel] = Field(default_factory=dict)
    alerts: dict[str, Alert] = Field(default_factory=dict)

    def window(self, alert: Alert) -> int:
        return self.dedup_window_seconds if alert.dedup_window_seconds is None else alert.dedup_window_seconds

    def subject(self, name: str, alert: Alert) -> str:
        return alert.subject or DEFAULT_SUBJECT.replace("TITLE", alert.title or name.replace("-", " "))

    def body(self, alert: Alert) -> str:
        window = self.window(alert)
        repeats = f" (repeats within {window} s are not sent again)" if window else ""
        return alert.body or DEFAULT_BODY.replace("WINDOW", repeats)


def load_alerts(path: Path = ALERTS_FILE) -> AlertsConfig:
    """Read and check `path`; AlertsConfigError says what is wrong, in one line."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as error:
        raise AlertsConfigError(f"Cannot read {path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise AlertsConfigError(
            f"{path.name} is not valid YAML{where}: {getattr(error, 'problem', error)}"
        ) from error
    return parse_alerts(raw, path.name)


def parse_alerts(raw: object, source: str = "alerts.yaml") -> AlertsConfig:
    if not isinstance(raw, dict):
        raise AlertsConfigError(f"{source} must be a mapping with `channels` and `alerts`")
    for name, channel in (raw.get("channels") or {}).items():
        if isinstance(channel, dict) and ("url" in channel or "webhook_url" in channel):
            raise AlertsConfigError(
                f"{source}: channel '{name}' gives its URL in the file; a webhook URL is a secret: "
                "set `url_env` to the name of the environment variable that holds it"
            )
    try:
        config = AlertsConfig.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise AlertsConfigError(f"{source}: {where}: {first['msg']}") from None
    for name, channel in config.channels.items():
        if channel.kind in ("webhook", "slack") and not channel.url_env:
            raise AlertsConfigError(
                f"{source}: channel '{name}' ({channel.kind}) needs `url_env`, the environment "
                "variable holding its webhook URL"
            )
        if channel.kind == "block" and channel.block.count("/") != 1:
            raise AlertsConfigError(
                f"{source}: channel '{name}' needs `block: <block-type-slug>/<block-name>` "
                "(e.g. ms-teams-webhook/oncall), a notification block saved on the Prefect server"
            )
    for name, alert in config.alerts.items():
        if alert.event not in KNOWN_EVENTS:
            raise AlertsConfigError(
                f"{source}: alert '{name}' listens to '{alert.event}', which inferloop does not emit; "
                f"use one of {', '.join(KNOWN_EVENTS)}"
            )
        if unknown := [c for c in alert.channels if c not in config.channels]:
            raise AlertsConfigError(
                f"{source}: alert '{name}' sends to unknown channel(s) {', '.join(unknown)}; "
                f"declared channels: {', '.join(config.channels) or 'none'}"
            )
    return config
