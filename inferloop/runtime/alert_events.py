"""The Prefect events inferloop emits when something a person should hear about happens.

Automations declared in `alerts.yaml` (applied by `inferloop deploy`) turn them into notifications.
Every event is about one registered model: its resource id is `inferloop.model.<name>`, so an
automation can group a storm (ten refused partitions of one backfill) per model. An event carries
the model, the version, the partition when there is one, a one-line summary, the reasons, and links
(the Prefect run, the MLflow version); never feature values, and never credentials: a link is
stripped of any `user:password@`, and reasons are the decisions' own words.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

PARTITION_REFUSED = "inferloop.partition.refused"
BREACH_CONFIRMED = "inferloop.monitoring.breach-confirmed"
RETRAIN_STARTED = "inferloop.retrain.started"
RETRAIN_SUPPRESSED = "inferloop.retrain.suppressed"
RETRAIN_FAILED = "inferloop.retrain.failed"
PROMOTION_AWAITING_APPROVAL = "inferloop.promotion.awaiting-approval"
PROMOTION_MADE = "inferloop.promotion.made"
PROMOTION_REFUSED = "inferloop.promotion.refused"
PROMOTION_ROLLED_BACK = "inferloop.promotion.rolled-back"
SERVING_STALE = "inferloop.serving.stale"

ALERT_EVENTS = (
    PARTITION_REFUSED,
    BREACH_CONFIRMED,
    RETRAIN_STARTED,
    RETRAIN_SUPPRESSED,
    RETRAIN_FAILED,
    PROMOTION_AWAITING_APPROVAL,
    PROMOTION_MADE,
    PROMOTION_REFUSED,
    PROMOTION_ROLLED_BACK,
    SERVING_STALE,
)
# Set while alerts must not reach people (a replay re-enacts history: its breaches, retrains and
# promotions are a simulation, not incidents).
_muted: ContextVar[str] = ContextVar("inferloop_alerts_muted", default="")

# inferloop.model.degraded (flows/monitor.py) starts the retrain deployment; it can be alerted on too.
DEGRADED = "inferloop.model.degraded"
# The online endpoint's degraded-model policy took effect / ended, and it started serving another
# version (inferloop/serving/events.py).
SERVING_DEGRADED = "inferloop.serving.degraded"
SERVING_RECOVERED = "inferloop.serving.recovered"
SERVING_VERSION_CHANGED = "inferloop.serving.version-changed"


@dataclass
class AlertEvent:
    """What happened, to which model (version, partition), why, and where to look."""

    event: str
    model: str
    summary: str
    version: str = ""
    partition: str = ""
    reasons: tuple[str, ...] = ()
    prefect_run_url: str = ""
    mlflow_version_url: str = ""

    def resource(self) -> dict[str, str]:
        labels = {
            "prefect.resource.id": f"inferloop.model.{self.model}",
            "prefect.resource.name": self.model,
            "inferloop.model": self.model,
        }
        if self.version:
            labels["inferloop.model.version"] = self.version
        if self.partition:
            labels["inferloop.partition"] = self.partition
        return labels

    def payload(self) -> dict:
        return {
            "summary": self.summary,
            "model": self.model,
            "version": self.version or "n/a",
            "partition": self.partition or "n/a",
            "reasons": list(self.reasons),
            "prefect_run_url": self.prefect_run_url or "n/a",
            "mlflow_version_url": self.mlflow_version_url or "n/a",
        }


def without_credentials(url: str) -> str:
    """`url` with any `user:password@` removed (a tracking URI may carry them)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def mlflow_version_url(tracking_uri: str, model: str, version: str) -> str:
    """The MLflow UI page of a model version, when the tracking URI is a server ("" otherwise:
    a SQLite or file store has no UI of its own)."""
    if not version or not tracking_uri.lower().startswith(("http://", "https://")):
        return ""
    base = without_credentials(tracking_uri).rstrip("/")
    return f"{base}/#/models/{quote(model, safe='')}/versions/{version}"


def current_run_url() -> str:
    """The Prefect UI page of the running flow run ("" outside one)."""
    from prefect.context import FlowRunContext
    from prefect.utilities.urls import url_for

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return ""
    try:
        return without_credentials(url_for("flow-run", obj_id=context.flow_run.id) or "")
    except Exception:  # no UI address known: a link is a convenience, not a requirement
        return ""


def emit_alert_event(alert: AlertEvent) -> None:
    """Send the event to the Prefect API (related to the current flow run, if any). Best effort:
    an unreachable events endpoint never fails the flow that reports the incident."""
    from prefect.events import emit_event

    if _muted.get():
        return
    try:
        emit_event(event=alert.event, resource=alert.resource(), payload=alert.payload())
    except Exception as error:  # the flow's own outcome matters more than its notification
        print(f"Could not emit {alert.event}: {error}")


@contextmanager
def alerts_muted(why: str) -> Iterator[None]:
    """No alert event is emitted by this thread (and the flows it calls) inside the block."""
    token = _muted.set(why)
    try:
        yield
    finally:
        _muted.reset(token)


def emit_alert(
    event: str,
    model: str,
    summary: str,
    *,
    version: str = "",
    partition: str = "",
    reasons: list[str] | tuple[str, ...] = (),
    tracking_uri: str = "",
) -> AlertEvent:
    """Build the event with its links (this flow run; the version's MLflow page) and emit it."""
    alert = AlertEvent(
        event=event,
        model=model,
        summary=summary,
        version=str(version or ""),
        partition=str(partition or ""),
        reasons=tuple(reasons),
        prefect_run_url=current_run_url(),
        mlflow_version_url=mlflow_version_url(tracking_uri, model, str(version or "")),
    )
    emit_alert_event(alert)
    return alert
