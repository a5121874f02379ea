"""Follows @champion: a background thread asks the registry where the alias points every
`serve_poll_seconds`, loads a new version while the old one keeps serving, then swaps.

The swap replaces one reference (`ServedModel`, model and version together), so a predict call
that took the old reference finishes on the old model and names the old version; the next one
takes the new. With the registry unreachable, the loaded version keeps serving and the state
says since when the alias could not be checked (`stale`).
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from inferloop.core.registry import ModelVersionRef, Registry, RegistryError
from inferloop.tasks.model.optimised import runtime_of
from inferloop.tasks.model.optimised_artifact import scoring_model

log = logging.getLogger("inferloop.serve")


@dataclass(frozen=True)
class ServedModel:
    """A loaded model and the version it is: replaced whole, never changed."""

    ref: ModelVersionRef
    model: object


@dataclass(frozen=True)
class FollowerState:
    """What /health/ready reports."""

    ready: bool
    version: str | None
    stale: bool
    seconds_since_check: float | None  # since the registry last answered
    problem: str | None  # why the alias could not be followed, last time it was tried


class ChampionFollower:
    """The served model, kept at the version behind `alias`."""

    def __init__(
        self,
        registry: Registry,
        alias: str,
        poll_seconds: float,
        on_swap: Callable[[ServedModel | None, ServedModel], None] = lambda old, new: None,
        on_check: Callable[[bool], None] = lambda ok: None,
    ):
        self.registry, self.alias, self.poll_seconds = registry, alias, poll_seconds
        self.on_swap, self.on_check = on_swap, on_check
        self.current: ServedModel | None = None
        self._last_ok: float | None = None
        self._problem: str | None = f"starting: @{alias} was not resolved yet"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_once(self) -> None:
        """Resolve the alias; load and swap in the version behind it if it is a new one."""
        try:
            ref = self.registry.find_alias(self.alias)
            if ref is None:
                self._problem = (
                    f"{self.registry.model_name}@{self.alias} does not exist: train and promote a "
                    "model (inferloop train) or set INFERLOOP_MODEL_NAME"
                )
            elif self.current is None or self.current.ref.version != ref.version:
                log.info("loading %s v%s (@%s)", ref.name, ref.version, self.alias)
                # The compiled library where the version's parity gate passed, else sklearn.
                loaded = ServedModel(ref, scoring_model(self.registry, ref))
                old, self.current = self.current, loaded  # the swap: one reference
                log.info("now serving %s v%s (%s)", ref.name, ref.version, runtime_of(loaded.model))
                self.on_swap(old, loaded)
                self._problem = None
            else:
                self._problem = None
            self._last_ok = time.monotonic()
            self.on_check(True)
        except RegistryError as error:
            self._problem = str(error)
            log.warning("could not follow @%s: %s", self.alias, error)
            self.on_check(False)

    def state(self) -> FollowerState:
        since = None if self._last_ok is None else time.monotonic() - self._last_ok
        current = self.current
        # Stale: the registry did not answer the last check, or no check succeeded for two intervals.
        stale = current is not None and (
            self._problem is not None or since is None or since > 2 * self.poll_seconds + 30
        )
        return FollowerState(
            ready=current is not None,
            version=current.ref.version if current else None,
            stale=stale,
            seconds_since_check=None if since is None else round(since, 3),
            problem=self._problem,
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="follow-champion", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.check_once()
            except Exception:  # a model that cannot load must not end the following
                log.exception("following @%s failed", self.alias)
                self._problem = f"loading the new version of @{self.alias} failed: see the server log"
            self._stop.wait(max(0.0, self.poll_seconds - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
