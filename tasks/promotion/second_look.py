"""A second look at a rejected challenger: compared with the champion again, once, on the
labelled rows that came after it.

A challenger is judged on its held-out partitions, which on a feed of small partitions are
little evidence: on Elec2 the held-out difference predicted the next week's at a correlation of
0.03, and 23 of 68 rejected challengers did clearly better than the champion on the rows after
their rejection (docs/benchmarks.md). So a challenger rejected by checks on the compared rows
alone (the comparison, the evidence, the ROC AUC floor; not its data or its inputs) stays
`@challenger` and, once `min_promotion_rows` labelled rows exist after both its window and the
champion's, is compared again on exactly those rows, new to both models, with the same gates.
Once: a challenger looked at until chance favours it would promote noise. A newer challenger
takes its place (and its second look).
"""

import json
from dataclasses import asdict, dataclass
from datetime import date

from inferloop.core.periods import parse_key
from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import Settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import MissingDataError, read_labels
from inferloop.tasks.model.registry import find_alias, model_registry

TAG = "inferloop.second_look"
DECIDED_BY = "second look (monitor flow)"
# Checks judged on the compared rows, which other rows may answer differently (the ROC AUC floor
# too: held-out days hard for every model); a version's data or inputs do not change with rows.
ROW_CHECKS = frozenset({"min_roc_auc", "enough_evidence", "beats_champion", "clearly_better_after_failures"})


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
    """Rejected by checks on the compared rows alone (its recorded failed checks), not looked at again yet."""
    failed = {c for c in tags.get("inferloop.decision.failed_checks", "").split(",") if c}
    return (
        tags.get("inferloop.decision.verdict") == "reject"
        and bool(failed)
        and failed <= ROW_CHECKS
        and TAG not in tags
    )


def second_look_due(
    storage: Storage, settings: Settings, champion: ModelVersionRef, day: date
) -> SecondLook | None:
    """The second look to take on `day` (labels known then), if one is due: `@challenger` awaits
    one and `min_promotion_rows` labelled rows exist after both models' training windows."""
    challenger = find_alias(settings.registry, settings.registry.challenger_alias)
    if challenger is None or challenger.version == champion.version:
        return None
    registry = model_registry(settings.registry)
    if not awaits_second_look(registry.version_tags(challenger.version)):
        return None
    spec = settings.dataset
    fitted_until = [registry.run(ref.run_id).params.get("window_end") for ref in (challenger, champion)]
    start = spec.partitioning.shift(max(parse_key(d) for d in fitted_until if d), 1)
    end = spec.partitioning.shift(day, -spec.label.delay_days)
    if start > end:
        return None
    try:
        rows = len(read_labels(storage, spec, start, end))
    except MissingDataError:
        return None
    if rows < settings.promotion.min_promotion_rows:
        return None
    return SecondLook(challenger.version, start, end, rows)


def record_second_look(settings: Settings, look: SecondLook) -> None:
    """Written on the version, so that it is looked at once and the MLflow UI shows the outcome."""
    record = {**asdict(look), "start": look.start.isoformat(), "end": look.end.isoformat()}
    model_registry(settings.registry).tag_version(look.version, {TAG: json.dumps(record)})
