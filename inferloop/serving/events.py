"""Tell people when the online endpoint starts serving a model it can no longer check against
@champion (the registry stopped answering): the `inferloop.serving.stale` alert event; when its
degraded-model policy takes effect or ends: `inferloop.serving.degraded` / `.recovered`; and
when it starts serving another version: `inferloop.serving.version-changed`.

Sent once per outage (on the change from following to stale, not on every failed poll), and only
when the process is pointed at a Prefect server (PREFECT_API_URL): without one, Prefect's client
would start a temporary server inside the endpoint to receive the event.
"""

import os
from collections.abc import Callable

from inferloop.runtime.alert_events import (
    SERVING_DEGRADED,
    SERVING_RECOVERED,
    SERVING_STALE,
    SERVING_VERSION_CHANGED,
    emit_alert,
)


class StaleAlert:
    """An `on_check` callback for ChampionFollower: the first failed check while a model is
    served emits; a successful check ends the outage."""

    def __init__(
        self,
        model: str,
        version: Callable[[], str | None],
        problem: Callable[[], str | None],
        tracking_uri: str = "",
        emit: Callable[..., object] = emit_alert,
    ):
        self.model, self.version, self.problem = model, version, problem
        self.tracking_uri, self.emit = tracking_uri, emit
        self.stale = False

    def __call__(self, ok: bool) -> None:
        if ok:
            self.stale = False
            return
        version = self.version()
        # No model loaded yet: nothing stale is served (the readiness probe reports that case).
        if self.stale or version is None or not os.environ.get("PREFECT_API_URL"):
            return
        self.stale = True
        self.emit(
            SERVING_STALE,
            self.model,
            f"The online endpoint serves {self.model} v{version} but cannot check @champion: "
            "it may be serving a stale model",
            version=version,
            reasons=[self.problem() or "the registry did not answer"],
            tracking_uri=self.tracking_uri,
        )


class DegradedAlert:
    """An `on_degraded` callback for ChampionFollower: every change between serving normally and
    serving under the degraded-model policy is an event (with a Prefect server to receive it)
    and the `inferloop_serve_degraded` gauge."""

    def __init__(self, model: str, gauge, tracking_uri: str = "", emit: Callable[..., object] = emit_alert):
        self.model, self.gauge = model, gauge
        self.tracking_uri, self.emit = tracking_uri, emit

    def __call__(self, served) -> None:
        self.gauge.set(1 if served.degraded else 0)
        if not os.environ.get("PREFECT_API_URL"):
            return
        version = served.ref.version
        self.emit(
            SERVING_DEGRADED if served.degraded else SERVING_RECOVERED,
            self.model,
            f"The online endpoint serves {self.model} v{version} degraded: {served.degraded}"
            if served.degraded
            else f"The online endpoint serves {self.model} v{version} normally again: the breach closed",
            version=version,
            reasons=[served.degraded] if served.degraded else [],
            tracking_uri=self.tracking_uri,
        )


class VersionChangedEvent:
    """An `on_swap` callback for ChampionFollower: another version now scores (a move of
    @champion, or the fallback policy), told to the Prefect server if there is one."""

    def __init__(self, model: str, tracking_uri: str = "", emit: Callable[..., object] = emit_alert):
        self.model, self.tracking_uri, self.emit = model, tracking_uri, emit

    def __call__(self, old, new) -> None:
        if not os.environ.get("PREFECT_API_URL"):
            return
        before = f"v{old.ref.version}" if old else "nothing (start-up)"
        self.emit(
            SERVING_VERSION_CHANGED,
            self.model,
            f"The online endpoint now serves {self.model} v{new.ref.version} (before: {before})",
            version=new.ref.version,
            reasons=[new.degraded] if new.degraded else [],
            tracking_uri=self.tracking_uri,
        )
