"""Follows @champion: a background thread asks the registry where the alias points every
`serve_poll_seconds` (at once when MLflow's webhook says the alias or a tag moved), loads a new
version while the old one keeps serving, then swaps.

The swap replaces one reference (`ServedModel`, model and version together), so a predict call
that took the old reference finishes on the old model and names the old version; the next one
takes the new. With the registry unreachable, the loaded version keeps serving and the state
says since when the alias could not be checked (`stale`).

While the monitor's confirmed breach of the champion is open (the version's `inferloop.breach`
tag, read with the alias), the degraded-model policy applies: `serve` keeps the champion and
flags every response, `fallback` scores with @previous_champion (loaded the same way), `reject`
has the endpoint answer 503 with the reason. Each change of that state calls `on_degraded`.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from inferloop.core.registry import ModelVersionRef, Registry, RegistryError
from inferloop.tasks.model.optimised import runtime_of
from inferloop.tasks.model.optimised_artifact import scoring_model

log = logging.getLogger("inferloop.serve")


@dataclass(frozen=True)
class ServedModel:
    """A loaded model and the version it is: replaced whole, never changed."""

    ref: ModelVersionRef
    model: object
    degraded: str | None = None  # the champion's open breach this model serves under, described


@dataclass(frozen=True)
class FollowerState:
    """What /health/ready reports."""

    ready: bool
    version: str | None
    stale: bool
    seconds_since_check: float | None  # since the registry last answered
    problem: str | None  # why the alias could not be followed, last time it was tried
    degraded: str | None = None  # the champion's open breach and what the policy does about it


class ChampionFollower:
    """The served model, kept at the version behind `alias`."""

    def __init__(
        self,
        registry: Registry,
        alias: str,
        poll_seconds: float,
        on_swap: Callable[[ServedModel | None, ServedModel], None] = lambda old, new: None,
        on_check: Callable[[bool], None] = lambda ok: None,
        degraded_policy: Literal["serve", "fallback", "reject"] = "serve",
        fallback_alias: str = "previous_champion",
        on_degraded: Callable[[ServedModel], None] = lambda served: None,
        load: Callable[[ModelVersionRef], object] | None = None,
    ):
        self.registry, self.alias, self.poll_seconds = registry, alias, poll_seconds
        # What scores with a version (`scoring_model`); the endpoint loads in a helper process.
        self.load = load or (lambda ref: scoring_model(registry, ref))
        self.on_swap, self.on_check, self.on_degraded = on_swap, on_check, on_degraded
        self.degraded_policy, self.fallback_alias = degraded_policy, fallback_alias
        self.champion: ServedModel | None = None  # the version behind the alias, loaded
        self._fallback: ServedModel | None = None  # @fallback_alias's, loaded while it scores
        self._fallback_failed: str | None = None  # a version that failed to load: not retried until restart
        self.current: ServedModel | None = None  # what scores: the champion, or the fallback
        self._last_ok: float | None = None
        self._problem: str | None = f"starting: @{alias} was not resolved yet"
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and wake(): ends the wait between polls
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
            else:
                if self.champion is None or self.champion.ref.version != ref.version:
                    self.champion = self._load(ref)
                else:  # the same version; its breach may have opened or closed
                    self.champion = replace(self.champion, ref=ref)
                self._serve(self._under_policy(ref.open_breach))
                self._problem = None
            self._last_ok = time.monotonic()
            self.on_check(True)
        except RegistryError as error:
            self._problem = str(error)
            log.warning("could not follow @%s: %s", self.alias, error)
            self.on_check(False)

    def _load(self, ref: ModelVersionRef) -> ServedModel:
        log.info("loading %s v%s", ref.name, ref.version)
        return ServedModel(ref, self.load(ref))

    def _under_policy(self, breach: str | None) -> ServedModel:
        """What scores while the champion's breach is `breach` (None: none open)."""
        champion = self.champion
        if breach is None or self.degraded_policy != "fallback":
            self._fallback = None
            return replace(champion, degraded=breach and f"{breach} (policy {self.degraded_policy})")
        try:
            previous = self.registry.find_alias(self.fallback_alias)
        except RegistryError as error:  # the champion was resolved: the follower is not stale
            return replace(
                champion,
                degraded=f"{breach} (policy fallback, but @{self.fallback_alias} could not be "
                f"resolved: {error}; the champion scores)",
            )
        why_not = (
            f"no @{self.fallback_alias}"
            if previous is None or previous.version == champion.ref.version
            else f"@{self.fallback_alias} v{previous.version} has an open breach too"
            if previous.open_breach
            else None
        )
        if why_not is None and (self._fallback is None or self._fallback.ref.version != previous.version):
            if self._fallback_failed != previous.version:
                try:
                    self._fallback = self._load(previous)
                except Exception:  # the champion keeps scoring; the state says why
                    log.exception("loading @%s v%s failed", self.fallback_alias, previous.version)
                    self._fallback_failed = previous.version
            if self._fallback_failed == previous.version:
                why_not = f"@{self.fallback_alias} v{previous.version} failed to load (see the log)"
        if why_not is not None:
            self._fallback = None
            return replace(
                champion, degraded=f"{breach} (policy fallback, but {why_not}: the champion scores)"
            )
        return replace(self._fallback, degraded=f"{breach} (policy fallback: @{self.fallback_alias} scores)")

    def _serve(self, served: ServedModel) -> None:
        """The swap: one reference."""
        old, self.current = self.current, served
        if old is None or old.ref.version != served.ref.version:
            log.info("now serving %s v%s (%s)", served.ref.name, served.ref.version, runtime_of(served.model))
            self.on_swap(old, served)
        if ((old.degraded if old else None) is None) != (served.degraded is None):
            log.warning("%s v%s: %s", served.ref.name, served.ref.version, served.degraded or "breach closed")
            self.on_degraded(served)

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
            degraded=current.degraded if current else None,
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="follow-champion", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Check the alias now rather than at the next poll (MLflow's webhook said it moved)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self._wake.clear()
            try:
                self.check_once()
            except Exception:  # a model that cannot load must not end the following
                log.exception("following @%s failed", self.alias)
                self._problem = f"loading the new version of @{self.alias} failed: see the server log"
            self._wake.wait(max(0.0, self.poll_seconds - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
