"""Online traffic in monitoring: the rows `inferloop serve` scored, measured as batch predictions are.

The online partition of a day (`catalog.online_predictions(model, day)`, which the endpoint's
online log appends to) is another source of scored rows for that day. The daily report measures
it with the same functions and thresholds as the batch predictions, in a section of its own
(`MonitoringReport.online`), not merged into them:
- they are different populations: an application's real-time requests are seldom the whole
  nightly feed (one channel, one product, some customers); merged, the larger source would hide
  the drift of the smaller one;
- the same event may be scored by both (in real time, then again when the feed lands): merged,
  it would count twice in the performance;
- a regression of one serving path (a client sending a feature in other units) must point at it.
Online breaches still count among the day's breaches, named "(online)", so the retrain policy
acts on them as on the batch ones.

What is measured:
- drift of the day's online rows against the reference profile of the version that scored them
  (the champion when it scored any that day, else the latest version that did: @champion may
  move during a day), and the drift of that version's scores;
- performance on the labels that arrived, joined by id as batch predictions are: the event day's
  online rows (the same version rule), and the champion's own online rows over the rolling window.
An id the endpoint scored more than once (a client's retry) counts once, with its latest score.
A day without online rows leaves the section empty (None): nothing was served.
"""

from dataclasses import asdict, dataclass, field, replace
from datetime import date

import pandas as pd

from inferloop.core import catalog
from inferloop.core.dataset import DatasetSpec
from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import Settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import MissingDataError, join_on_ids, positive_target, read_labels
from inferloop.tasks.model.registry import load_reference_profile, model_registry, version_threshold
from inferloop.tasks.monitoring.drift import FeatureDrift, feature_drift, prediction_drift
from inferloop.tasks.monitoring.drift_window import OTHER_VERSION, PooledRows, pool_bound, pool_scored_rows
from inferloop.tasks.monitoring.performance import PerformanceSnapshot, snapshot_of

SOURCE = "online"


@dataclass
class OnlineMonitoring:
    """The online endpoint's scored rows of the monitored day, measured like the batch ones."""

    rows_scored: int = 0  # distinct ids scored online with the monitored event day
    rows_by_version: dict[str, int] = field(default_factory=dict)
    scored_by: str | None = None  # the version whose reference profile drift is measured against
    drift_verdict: str = ""
    drift_partitions: list[str] = field(default_factory=list)  # what drift rests on (drift_window.py)
    drift_rows: int = 0
    drift: list[FeatureDrift] = field(default_factory=list)
    prediction_psi: float | None = None
    day_performance: PerformanceSnapshot | None = None  # event day = day - label delay
    rolling_performance: PerformanceSnapshot | None = None  # the champion's online rows, recent days

    @property
    def drifted_features(self) -> list[str]:
        return [d.feature for d in self.drift if d.flagged]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "OnlineMonitoring":
        return cls(**{**raw, **measured_from_dict(raw)})


def measured_from_dict(raw: dict) -> dict:
    """The drift and performance fields of a saved report (batch or online), as objects again."""
    snapshots = {
        key: PerformanceSnapshot(**raw[key]) if raw.get(key) else None
        for key in ("day_performance", "rolling_performance")
    }
    return snapshots | {"drift": [FeatureDrift(**d) for d in raw.get("drift", [])]}


def read_online_rows(
    storage: Storage, spec: DatasetSpec, model_name: str, day: date, columns: list[str]
) -> pd.DataFrame:
    """The rows the endpoint scored for `model_name` with event day `day` (`columns`, plus the
    id and the version that scored them), one per id: its latest score. Empty when none."""
    wanted = list(dict.fromkeys([spec.id_column, "model_version", *columns, "scored_at"]))
    partition = catalog.online_predictions(model_name, day)
    if not storage.exists(partition) or not storage.data_files(partition):
        return pd.DataFrame(columns=wanted)
    rows = storage.read_table(partition, wanted).to_pandas()
    return rows.sort_values("scored_at", kind="stable").drop_duplicates(spec.id_column, keep="last")


def online_scorer(rows: pd.DataFrame, champion: ModelVersionRef) -> str | None:
    """The version whose online rows of a day are measured: the champion's when it scored any,
    else the latest version that did (as `daily_report.scorer` chooses among batch predictions)."""
    versions = set(rows["model_version"])
    if champion.version in versions:
        return champion.version
    return max(versions, key=int) if versions else None


def measure_online(
    storage: Storage,
    settings: Settings,
    champion: ModelVersionRef,
    day: date,
    event_day: date,
    window: list[date],
) -> OnlineMonitoring | None:
    """Drift of `day`'s online rows and performance on the online rows whose labels arrived
    (`event_day`, and the champion's over `window`); None when there is nothing online to measure
    (no online rows of `day`, and no labelled online rows of the other days)."""
    spec = settings.dataset
    rows = read_online_rows(storage, spec, champion.name, day, [*spec.feature_columns, "score"])
    labelled = {
        d: _with_labels(storage, spec, read_online_rows(storage, spec, champion.name, d, ["score"]), d)
        for d in dict.fromkeys([event_day, *window])
    }
    if rows.empty and all(frame is None for frame in labelled.values()):
        return None
    by_version = rows["model_version"].value_counts().sort_index()
    online = OnlineMonitoring(
        rows_scored=len(rows), rows_by_version={str(v): int(n) for v, n in by_version.items()}
    )
    _measure_drift(storage, settings, champion, day, rows, online)
    default = settings.scoring.decision_threshold  # each version's metrics at its own threshold
    if (event_rows := labelled[event_day]) is not None:
        version = online_scorer(event_rows, champion)
        online.day_performance = snapshot_of(
            event_rows[event_rows["model_version"] == version],
            version,
            version_threshold(settings.registry, version, default, champion),
        )
    champion_rows = [
        frame[frame["model_version"] == champion.version]
        for d in window
        if (frame := labelled[d]) is not None
    ]
    if champion_rows:
        online.rolling_performance = snapshot_of(
            pd.concat(champion_rows), champion.version, champion.threshold(default)
        )
    return online


def _measure_drift(
    storage: Storage,
    settings: Settings,
    champion: ModelVersionRef,
    day: date,
    rows: pd.DataFrame,
    online: OnlineMonitoring,
) -> None:
    """Drift of `day`'s online rows, pooled with the recent partitions whose online rows the same
    version scored when they are fewer than `min_drift_rows` (tasks/monitoring/drift_window.py)."""
    spec, monitoring = settings.dataset, settings.monitoring
    online.scored_by = online_scorer(rows, champion)

    def scored(key: date) -> pd.DataFrame | None:
        earlier = read_online_rows(storage, spec, champion.name, key, list(rows.columns))
        return (
            earlier
            if earlier.empty or online_scorer(earlier, champion) == online.scored_by
            else OTHER_VERSION
        )

    bound, knob = pool_bound(
        monitoring.drift_pool_partitions, settings.lake.retain_online_days, "INFERLOOP_RETAIN_ONLINE_DAYS"
    )
    if not online.scored_by:  # a day nothing was served has no traffic of its own to judge: no pooling
        bound, knob = 1, PooledRows.bound_knob
    pooled = pool_scored_rows(rows, day, scored, spec.partitioning, monitoring.min_drift_rows, bound, knob)
    online.drift_partitions, online.drift_rows = pooled.keys(), len(pooled.rows)
    online.drift_verdict = pooled.verdict(monitoring.min_drift_rows)
    if not pooled.enough(monitoring.min_drift_rows):
        return
    run_id = (
        champion.run_id
        if online.scored_by == champion.version
        else model_registry(settings.registry).get_version(online.scored_by).run_id
    )
    profile = load_reference_profile(settings.registry, run_id)
    online.drift = feature_drift(pooled.rows, profile, spec, monitoring.drift_psi_threshold)
    scored_by_it = pooled.rows["model_version"] == online.scored_by
    online.prediction_psi = prediction_drift(pooled.rows.loc[scored_by_it, "score"].to_numpy(float), profile)


def _with_labels(storage: Storage, spec: DatasetSpec, rows: pd.DataFrame, day: date) -> pd.DataFrame | None:
    """`rows` of event day `day` joined to their arrived labels (a `target` column); None when
    none of them has a label yet."""
    if rows.empty:
        return None
    try:
        labels = read_labels(storage, spec, day, day)
    except MissingDataError:
        return None
    joined = join_on_ids(rows, labels, spec, validate="one_to_one")
    return None if joined.empty else joined.assign(target=positive_target(joined, spec), event_day=day)


def online_view(report):
    """`report` (a MonitoringReport) with the online rows' drift and performance in place of the
    batch ones: what the day's breach thresholds are applied to for the online traffic. The
    change detector and calibration check run on batch predictions only."""
    online: OnlineMonitoring = report.online
    return replace(
        report,
        drift=online.drift,
        rolling_performance=online.rolling_performance,
        calibration=None,
        changes=[],
        online=None,
    )


def online_named(breaches: list[str]) -> list[str]:
    """Breaches of the online traffic, named so: "drift (online): amount PSI ..."."""
    return [breach.replace(":", f" ({SOURCE}):", 1) for breach in breaches]
