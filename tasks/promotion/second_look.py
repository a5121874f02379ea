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

import contextlib
import json
from dataclasses import asdict, dataclass
from datetime import date

from inferloop.core.periods import parse_key
from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import Settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import MissingDataError, feature_partition_days, read_labels
from inferloop.tasks.model.registry import find_alias, model_registry

TAG = "inferloop.second_look"
IN_LEDGER = " second look, "  # how its retrain-ledger entry's outcome reads: "v7 second look, promote: ..."
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

    def ledger_outcome(self) -> str:
        return f"v{self.version}{IN_LEDGER}{self.verdict}: {self.reason}"

    def describe(self) -> str:
        return (
            f"second look at v{self.version} on {self.rows} labelled rows of {self.start}..{self.end}: "
            f"{self.verdict} ({self.reason})"
        )


def awaits_second_look(tags: dict[str, str], champion_version: str) -> bool:
    """Rejected by checks on the compared rows alone (its recorded failed checks), against the
    champion of today (not one a person or a rollback has since replaced), not looked at again yet."""
    failed = {c for c in tags.get("inferloop.decision.failed_checks", "").split(",") if c}
    return (
        tags.get("inferloop.decision.verdict") == "reject"
        and tags.get("inferloop.decision.champion_before") == champion_version
        and bool(failed)
        and failed <= ROW_CHECKS
        and TAG not in tags
    )


def compared_until(evaluation: str) -> date | None:
    """The last partition a recorded decision compared on ("<what>: <start>..<end>")."""
    _, _, window = evaluation.rpartition(": ")
    _, dots, end = window.partition("..")
    try:
        return parse_key(end) if dots else None
    except ValueError:
        return None


def second_look_due(
    storage: Storage, settings: Settings, champion: ModelVersionRef, day: date
) -> SecondLook | None:
    """The second look to take on `day`, if one is due: `@challenger` awaits one and the labels
    known on `day` hold `min_promotion_rows` rows after every row either model was fitted on or
    the challenger was compared on; the look's window ends at the partition that reaches them."""
    challenger = find_alias(settings.registry, settings.registry.challenger_alias)
    if challenger is None or challenger.version == champion.version:
        return None
    registry = model_registry(settings.registry)
    tags = registry.version_tags(challenger.version)
    if not awaits_second_look(tags, champion.version):
        return None
    challenger_fitted_until = registry.run(challenger.run_id).params.get("window_end")
    if not challenger_fitted_until:
        return None  # a version without a recorded window: no rows are known to be new to it
    seen = [parse_key(challenger_fitted_until)]
    if champion_fitted_until := registry.run(champion.run_id).params.get("window_end"):
        seen.append(parse_key(champion_fitted_until))
    if compared := compared_until(tags.get("inferloop.decision.evaluation", "")):
        seen.append(compared)
    spec = settings.dataset
    start = spec.partitioning.shift(max(seen), 1)
    end = spec.partitioning.shift(day, -spec.label.delay_days)
    rows = 0
    for partition in feature_partition_days(storage, spec):  # labels without features: not compared
        if start <= partition <= end:
            with contextlib.suppress(MissingDataError):  # none arrived for it
                rows += len(read_labels(storage, spec, partition, partition))
            if rows >= settings.promotion.min_promotion_rows:
                return SecondLook(challenger.version, start, partition, rows)
    return None


def record_second_look(settings: Settings, look: SecondLook) -> None:
    """Written on the version, so that it is looked at once and the MLflow UI shows the outcome."""
    record = {**asdict(look), "start": look.start.isoformat(), "end": look.end.isoformat()}
    model_registry(settings.registry).tag_version(look.version, {TAG: json.dumps(record)})
