"""A second look at a rejected challenger: compared with the champion again, once, on the
labelled rows that came after it.

A challenger is judged on its held-out partitions, which on a feed of small partitions are
little evidence: on Elec2 the held-out difference predicted the next week's at a correlation of
0.03, and 23 of 68 rejected challengers did clearly better than the champion on the rows after
their rejection (docs/benchmarks.md). So a challenger rejected by the comparison alone (not by
its data, its inputs or the ROC AUC floor) stays `@challenger` and, once `min_promotion_rows`
labelled rows exist after both its window and the champion's, is compared again on exactly
those rows, new to both models, with the same gates. Once: a challenger looked at until chance
favours it would promote noise. A newer challenger takes its place (and its second look).
"""

import contextlib
import json
import math
from dataclasses import asdict, dataclass
from datetime import date

from inferloop.core.periods import parse_key
from inferloop.core.settings import Settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import MissingDataError, read_labels
from inferloop.tasks.model.registry import find_alias, model_registry

TAG = "inferloop.second_look"
DECIDED_BY = "second look (monitor flow)"
# A rejection for these alone says the evidence did not favour the challenger, not that it is unfit.
COMPARATIVE_CHECKS = frozenset({"enough_evidence", "beats_champion", "clearly_better_after_failures"})


@dataclass
class SecondLook:
    """A rejected challenger's second comparison: on the labelled partitions `start`..`end`."""

    version: str
    start: date
    end: date
    rows: int  # labelled rows in the window when the look was decided on
    verdict: str = ""  # the promotion verdict, or "not judged" with the error
    reason: str = ""

    def describe(self) -> str:
        return (
            f"second look at v{self.version} on {self.rows} labelled rows of {self.start}..{self.end}: "
            f"{self.verdict} ({self.reason})"
        )


def awaits_second_look(tags: dict[str, str]) -> bool:
    """Rejected by the comparison alone (its recorded failed checks) and not looked at again yet."""
    failed = {c for c in tags.get("inferloop.decision.failed_checks", "").split(",") if c}
    return (
        tags.get("inferloop.decision.verdict") == "reject"
        and bool(failed)
        and failed <= COMPARATIVE_CHECKS
        and TAG not in tags
    )


@dataclass
class _Evidence:
    version: str
    start: date
    end: date
    rows: int  # labelled rows after both models' windows, known on the day asked about
    rows_per_partition: float  # of the challenger's held-out partitions: how fast more arrive


def _evidence(storage: Storage, settings: Settings, day: date) -> _Evidence | None:
    """The rows `@challenger`'s second look would rest on, known on `day`, if it awaits one."""
    champion = find_alias(settings.registry, settings.registry.champion_alias)
    challenger = find_alias(settings.registry, settings.registry.challenger_alias)
    if champion is None or challenger is None or challenger.version == champion.version:
        return None
    registry = model_registry(settings.registry)
    if not awaits_second_look(registry.version_tags(challenger.version)):
        return None
    spec = settings.dataset
    params = registry.run(challenger.run_id).params
    fitted_until = [params.get("window_end"), registry.run(champion.run_id).params.get("window_end")]
    start = spec.partitioning.shift(max(parse_key(d) for d in fitted_until if d), 1)
    end = spec.partitioning.shift(day, -spec.label.delay_days)
    rows = 0
    if start <= end:
        with contextlib.suppress(MissingDataError):  # none arrived yet
            rows = len(read_labels(storage, spec, start, end))
    per_partition = int(params.get("holdout_rows", 0)) / max(1, int(params.get("holdout_days", 1)))
    return _Evidence(challenger.version, start, end, rows, per_partition)


def second_look_due(storage: Storage, settings: Settings, day: date) -> SecondLook | None:
    """The second look to take on `day` (labels known then), if one is due: `@challenger` awaits
    one and `min_promotion_rows` labelled rows exist after both models' training windows."""
    evidence = _evidence(storage, settings, day)
    if evidence is None or evidence.rows < settings.promotion.min_promotion_rows:
        return None
    return SecondLook(evidence.version, evidence.start, evidence.end, evidence.rows)


def awaited_second_look(storage: Storage, settings: Settings, day: date) -> str | None:
    """Why a retrain on `day` waits, if it does: `@challenger` awaits its second look and the
    rows it needs should arrive within `retrain_cooldown_days` more partitions (at the rate of
    its held-out partitions). A retrain sooner would replace it unjudged (on Elec2, retrains
    every 3 days replaced 6 of 10 rejected challengers before 5 days of rows had come in)."""
    evidence = _evidence(storage, settings, day)
    needed = settings.promotion.min_promotion_rows
    if evidence is None or evidence.rows >= needed or evidence.rows_per_partition <= 0:
        return None
    partitions = math.ceil((needed - evidence.rows) / evidence.rows_per_partition)
    if partitions > settings.retrain.retrain_cooldown_days:
        return None
    return (
        f"v{evidence.version} awaits its second look: {evidence.rows} of {needed} labelled rows after "
        f"its window, about {partitions} more partition(s) (INFERLOOP_SECOND_LOOK)"
    )


def record_second_look(settings: Settings, look: SecondLook) -> None:
    """Written on the version, so that it is looked at once and the MLflow UI shows the outcome."""
    record = {**asdict(look), "start": look.start.isoformat(), "end": look.end.isoformat()}
    model_registry(settings.registry).tag_version(look.version, {TAG: json.dumps(record)})
