"""Apply `alerts.yaml` to a Prefect server: one notification block per channel and one automation
per alert, created or updated by name, so applying the same file twice changes nothing.

Deduplication is Prefect's own: each automation is a reactive EventTrigger with threshold 1,
grouped per model (`for_each` on the event's resource), and `within` the alert's window. Prefect
fires on the first event and ignores the same alert for the same model until the window ends, so
a storm (ten partitions refused in one backfill) sends one message. Automations named with
AUTOMATION_PREFIX that the file no longer makes active are deleted.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from inferloop.core.errors import InferloopError
from inferloop.stack.alerts_config import AlertsConfig, Channel

AUTOMATION_PREFIX = "inferloop alert: "
BLOCK_PREFIX = "inferloop-alert-"
URL_SECRET = "webhook_url"  # the URL lives in the block's secrets, shown masked in the UI

# What each channel kind POSTs; {{subject}} and {{body}} are the rendered templates.
WEBHOOK_JSON = {"source": "inferloop", "subject": "{{subject}}", "body": "{{body}}"}
SLACK_JSON = {"text": "*{{subject}}*\n{{body}}"}


class AlertsApplyError(InferloopError, RuntimeError):
    """The Prefect API refused or could not be reached while applying alerts.yaml."""


@dataclass
class AppliedAlerts:
    """What applying the file did, for the CLI to print."""

    automations: dict[str, str] = field(default_factory=dict)  # alert -> created|updated|unchanged
    channels: dict[str, str] = field(default_factory=dict)  # channel -> saved|kept|...
    skipped: list[str] = field(default_factory=list)  # why an alert or channel is not active
    deleted: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"alert channel {name}: {what}" for name, what in self.channels.items()]
        out += [f"alert {name}: {what}" for name, what in self.automations.items()]
        out += [f"alert removed (not in the file, or no channel of it configured): {n}" for n in self.deleted]
        return out + [f"not active: {why}" for why in self.skipped]


def apply_alerts(config: AlertsConfig, env: Mapping[str, str]) -> AppliedAlerts:
    """Create or update the blocks and automations of `config` on the Prefect server the current
    Prefect settings point at. A channel whose URL variable is unset keeps the block saved
    before (if any); an alert with no usable channel is skipped and said so. Afterwards the
    server holds exactly the file's active alerts: any other `inferloop alert: ...` automation
    is deleted."""
    from prefect.client.orchestration import get_client

    result = AppliedAlerts()
    with get_client(sync_client=True) as client:
        blocks = {
            name: block_id
            for name, channel in config.channels.items()
            if (block_id := _channel_block(client, name, channel, env, result)) is not None
        }
        for name, alert in config.alerts.items():
            usable = [c for c in alert.channels if c in blocks]
            if not usable:
                result.skipped.append(f"alert {name}: none of its channels is configured")
                continue
            result.automations[name] = _upsert_automation(client, name, _automation(config, name, blocks))
        for automation in client.read_automations():
            short = automation.name.removeprefix(AUTOMATION_PREFIX)
            if automation.name.startswith(AUTOMATION_PREFIX) and short not in result.automations:
                client.delete_automation(automation.id)
                result.deleted.append(short)
    return result


def _channel_block(client, name: str, channel: Channel, env: Mapping[str, str], result: AppliedAlerts):
    """The block document id a channel sends through (saving the block when its URL is set)."""
    from prefect.exceptions import ObjectNotFound

    if channel.kind == "block":
        slug, block_name = channel.block.split("/")
        try:
            block_id = client.read_block_document_by_name(block_name, slug, include_secrets=False).id
        except ObjectNotFound:
            result.skipped.append(
                f"channel {name}: no block {channel.block} on the Prefect server (create it under Blocks)"
            )
            return None
        result.channels[name] = f"uses block {channel.block}"
        return block_id
    if url := env.get(channel.url_env, "").strip():
        block = _webhook_block(name, channel, url)
        block_id = block.save(f"{BLOCK_PREFIX}{name}", overwrite=True)
        result.channels[name] = f"saved ({channel.kind}, URL from {channel.url_env})"
        return block_id
    try:
        block_id = client.read_block_document_by_name(
            f"{BLOCK_PREFIX}{name}", "custom-webhook", include_secrets=False
        ).id
    except ObjectNotFound:
        result.skipped.append(f"channel {name}: set {channel.url_env} to its webhook URL and redeploy")
        return None
    result.channels[name] = f"kept as saved before ({channel.url_env} is not set)"
    return block_id


def _webhook_block(name: str, channel: Channel, url: str):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    return CustomWebhookNotificationBlock(
        name=f"inferloop {name}",
        url="{{" + URL_SECRET + "}}",
        json_data=SLACK_JSON if channel.kind == "slack" else WEBHOOK_JSON,
        secrets={URL_SECRET: url},
    )


def _automation(config: AlertsConfig, name: str, blocks: Mapping[str, UUID]):
    from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification

    alert = config.alerts[name]
    return AutomationCore(
        name=f"{AUTOMATION_PREFIX}{name}",
        description=f"Declared in alerts.yaml: {alert.event} -> {', '.join(alert.channels)}",
        enabled=True,
        trigger=EventTrigger(
            expect={alert.event},
            match={"prefect.resource.id": "inferloop.model.*"},
            for_each={"prefect.resource.id"},  # one window per model
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(seconds=config.window(alert)),
        ),
        actions=[
            SendNotification(
                block_document_id=blocks[channel],
                subject=config.subject(name, alert),
                body=config.body(alert),
            )
            for channel in alert.channels
            if channel in blocks
        ],
    )


def _comparable(value):
    """A dump without generated ids, to tell an unchanged automation from a changed one."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in ("id", "owner_resource", "tags")}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _upsert_automation(client, name: str, automation) -> str:
    existing = client.read_automations_by_name(automation.name)
    for duplicate in existing[1:]:  # names are not unique in Prefect; the file says one
        client.delete_automation(duplicate.id)
    if not existing:
        client.create_automation(automation)
        return "created"
    wanted = _comparable(automation.model_dump(mode="json"))
    current = _comparable(existing[0].model_dump(mode="json", include=set(type(automation).model_fields)))
    if wanted == current:
        return "unchanged"
    client.update_automation(existing[0].id, automation)
    return "updated"


def apply_alerts_file(config: AlertsConfig, env: Mapping[str, str]) -> AppliedAlerts:
    """Apply `config` to the Prefect server `env` points at (PREFECT_API_URL, and in the prod
    profile PREFECT_API_AUTH_STRING), reading webhook URLs from `env` too."""
    import prefect.settings
    from prefect.settings import temporary_settings

    updates = {
        getattr(prefect.settings, name): env[name]
        for name in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING")
        if env.get(name)
    }
    import httpx

    with temporary_settings(updates=updates):
        try:
            return apply_alerts(config, env)
        except httpx.HTTPError as error:
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise AlertsApplyError(
                f"Applying alerts.yaml to the Prefect API at {env.get('PREFECT_API_URL', '(unset)')} "
                f"failed: {first_line}; check that the server runs (inferloop up), then apply again "
                "(inferloop alerts)"
            ) from error
