"""Promotions judged in hindsight: did the new champion do better than the one it replaced on
the rows that came after the promotion?

A promotion is decided on held-out rows from before it; what counts is the rows that follow.
Once at least `min_promotion_rows` labelled rows have been scored by the new champion, the
replaced version scores the same rows (its shadow, computed when the evidence is complete rather
than on every batch) and the two are compared on the monitored metric with the same paired
bootstrap promotion uses. The verdict is written on the new champion's version (tags
`inferloop.hindsight.*`), so it is computed once, shown in the MLflow UI and read back by later
decisions: while failures outnumber successes among the last few judged promotions, a challenger
must be clearly better to be promoted; `hindsight_action=rollback` also rolls a failed promotion
back. Rollback is not the default: on Elec2 (a stream that keeps drifting) it cost 1.1 points of
accuracy, as the replaced model, better on the rows that followed, is older still on the rows after
those (docs/benchmarks.md).
"""

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from inferloop.core.dataset import DatasetSpec
from inferloop.core.errors import InferloopError
from inferloop.core.registry import ModelNotFound, ModelVersionRef
from inferloop.core.settings import RegistrySettings, Settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import (
    MissingDataError,
    join_on_ids,
    prepare_features,
    read_feature_partition,
)
from inferloop.tasks.model.comparison import comparable_metric, paired_difference
from inferloop.tasks.model.prediction import positive_scores
from inferloop.tasks.model.registry import load_model, model_registry

TAG = "inferloop.hindsight"
JUDGED_MODES = ("auto", "approve")  # a person's move or a rollback is not a bet on new data
RECENT_PROMOTIONS = 3  # how many judged promotions raise the bar when one of them failed
VERSIONS_SEARCHED = 20
VERDICTS = {"clearly better": "better", "clearly worse": "worse"}  # else "no clear difference"
NOT_JUDGED = "not judged"


class MissingFeaturesError(InferloopError):
    """Rows the champion scored have no features left to score them with the replaced version."""


@dataclass
class HindsightVerdict:
    champion_version: str
    replaced_version: str
    verdict: str  # "pending" | "better" | "no clear difference" | "worse" | "not judged"
    rows: int  # labelled rows scored by the champion since it was promoted
    needed_rows: int
    comparison: dict | None = None  # the paired MetricDifference, champion minus replaced

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        subject = f"promotion of v{self.champion_version} over v{self.replaced_version}"
        if self.verdict == "pending":
            return f"{subject}: judged after {self.needed_rows} labelled rows ({self.rows} so far)"
        c = self.comparison or {}
        if self.verdict == NOT_JUDGED:
            return f"{subject}: not judged ({c.get('reason', 'no reason recorded')})"
        return (
            f"{subject} in hindsight: {self.verdict} ({c.get('metric')} {c.get('a', 0):.4f} vs "
            f"{c.get('b', 0):.4f} on the {self.rows} labelled rows that followed, 80 % interval "
            f"{c.get('lower', 0):+.4f}..{c.get('upper', 0):+.4f})"
        )


def judge(
    target: np.ndarray,
    champion_scores: np.ndarray,
    replaced_scores: np.ndarray,
    groups: np.ndarray,
    metric: str,
    threshold: float,
    replaced_threshold: float | np.ndarray | None = None,
    min_class_rows: int = 0,
) -> tuple[str, dict]:
    """The verdict on the same rows (champion minus replaced, each labelling rows at its own
    threshold: the champion's `threshold`, the replaced version's `replaced_threshold`, default
    the same; one per row where several versions scored them), and the comparison behind it:
    on `metric`, or on the probabilities' score where `metric` would rest on fewer than
    `min_class_rows` of the rarer class (`comparable_metric`, as promotion decides)."""
    metric = comparable_metric(metric, target, min_class_rows)
    difference = paired_difference(
        metric, target, champion_scores, replaced_scores, groups, threshold, threshold_b=replaced_threshold
    )
    return VERDICTS.get(difference.verdict, "no clear difference"), difference.to_dict()


def judged_promotion(registry: RegistrySettings, champion: ModelVersionRef) -> tuple[str, dict] | None:
    """(replaced version, recorded verdict or {}) when the champion came in by an automatic or
    approved promotion over another version; None otherwise (first champion, person, rollback)."""
    tags = model_registry(registry).version_tags(champion.version)
    replaced = tags.get("inferloop.decision.champion_before", "none")
    if tags.get("inferloop.decision.verdict") != "promote" or replaced == "none":
        return None
    if tags.get("inferloop.decision.mode") not in JUDGED_MODES:
        return None
    recorded = tags.get(f"{TAG}.verdict")
    return replaced, json.loads(recorded) if recorded else {}


def replaced_scores(
    storage: Storage,
    spec: DatasetSpec,
    registry: RegistrySettings,
    replaced: ModelVersionRef,
    rows: pd.DataFrame,
) -> np.ndarray:
    """The replaced version's scores of `rows` (id, event_day), from their feature partitions."""
    features = pd.concat(
        [read_feature_partition(storage, spec, day) for day in sorted(rows["event_day"].unique())],
        ignore_index=True,
    )
    aligned = join_on_ids(rows[[spec.id_column]], features, spec, validate="one_to_one")
    if len(aligned) != len(rows):
        raise MissingFeaturesError(f"{len(rows) - len(aligned)} of the judged rows have no features")
    return positive_scores(load_model(registry, replaced), prepare_features(aligned, spec))


def promotion_hindsight(
    storage: Storage, settings: Settings, champion: ModelVersionRef, since_promotion: pd.DataFrame
) -> HindsightVerdict | None:
    """The hindsight verdict on how `champion` got its alias, from its labelled predictions since
    then (`since_promotion`: id, score, target, event_day); recorded on the version once final."""
    judged = judged_promotion(settings.registry, champion)
    if judged is None:
        return None
    replaced_version, recorded = judged
    if recorded:
        return HindsightVerdict(**recorded)
    needed = settings.promotion.min_promotion_rows
    verdict = HindsightVerdict(champion.version, replaced_version, "pending", len(since_promotion), needed)
    if len(since_promotion) < needed:
        return verdict
    registry = model_registry(settings.registry)
    rows, default = since_promotion, settings.scoring.decision_threshold
    try:
        replaced = registry.get_version(replaced_version)
        old_scores = replaced_scores(storage, settings.dataset, settings.registry, replaced, rows)
    except (ModelNotFound, MissingDataError, MissingFeaturesError) as error:
        # The replaced version or the rows' features are gone (deleted, retention): no verdict,
        # recorded so that monitoring does not try again every day.
        verdict.verdict, verdict.comparison = NOT_JUDGED, {"reason": str(error)}
    else:
        verdict.verdict, verdict.comparison = judge(
            rows["target"].to_numpy(),
            rows["score"].to_numpy(float),
            old_scores,
            rows["event_day"].astype(str).to_numpy(),
            settings.monitoring.monitor_metric,
            champion.threshold(default),
            replaced.threshold(default),
            settings.training.min_class_rows,
        )
    registry.tag_version(champion.version, {f"{TAG}.verdict": json.dumps(verdict.to_dict())})
    return verdict


def recent_failures(registry: RegistrySettings, latest_version: str) -> list[HindsightVerdict]:
    """The failed verdicts among the last RECENT_PROMOTIONS judged promotions before
    `latest_version` when they outnumber the successful ones (promotions keep failing); else []."""
    models = model_registry(registry)
    judged: list[HindsightVerdict] = []
    for version in range(int(latest_version) - 1, max(0, int(latest_version) - VERSIONS_SEARCHED), -1):
        try:
            recorded = models.version_tags(str(version)).get(f"{TAG}.verdict")
        except ModelNotFound:  # a deleted version: nothing to learn from it
            continue
        if recorded and (verdict := HindsightVerdict(**json.loads(recorded))).verdict != NOT_JUDGED:
            judged.append(verdict)
        if len(judged) == RECENT_PROMOTIONS:
            break
    failed = [v for v in judged if v.verdict == "worse"]
    return failed if len(failed) > sum(v.verdict == "better" for v in judged) else []
