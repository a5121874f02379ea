"""One day's monitoring: drift of the scored partition and performance on the labels that arrived.

History: `monitoring/<dataset>/date=D/report.json` (the whole report) and `metrics.parquet`
(one row per measured value) in the lake, and metrics in the MLflow monitoring experiment
(one run per model version, step = day) so the MLflow UI plots them over time.
Rerunning a day rewrites the same records: monitoring is idempotent.
"""

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import cache

import pandas as pd
import pyarrow as pa
from prefect import task

from inferloop.core import catalog
from inferloop.core.dataset import DatasetSpec
from inferloop.core.periods import parse_key
from inferloop.core.registry import MetricPoint, ModelVersionRef
from inferloop.core.settings import MonitoringSettings, RegistrySettings, Settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import MissingDataError, join_on_ids, read_feature_partition
from inferloop.tasks.gate.partition_gate import gate_refused
from inferloop.tasks.model.comparison import CLASS_METRICS
from inferloop.tasks.model.registry import load_reference_profile, model_registry, version_threshold
from inferloop.tasks.monitoring.change_detection import (
    ChangeVerdict,
    calibration_gap,
    performance_changes,
    since_deployment,
)
from inferloop.tasks.monitoring.drift import FeatureDrift, feature_drift, prediction_drift
from inferloop.tasks.monitoring.drift_window import OTHER_VERSION, pool_bound, pool_scored_rows
from inferloop.tasks.monitoring.hindsight import HindsightVerdict, promotion_hindsight
from inferloop.tasks.monitoring.online import (
    SOURCE,
    OnlineMonitoring,
    measure_online,
    measured_from_dict,
    online_named,
    online_view,
)
from inferloop.tasks.monitoring.performance import (
    PerformanceSnapshot,
    performance_snapshot,
    read_predictions,
    scored_as_champion,
    scoring_versions,
    snapshot_of,
)


@dataclass
class MonitoringReport:
    dataset: str
    model_name: str
    model_version: str  # the champion being monitored
    day: str  # the scored partition whose drift is measured
    rows_scored: int = 0
    scored_by: str | None = None  # version whose predictions of `day` were measured
    drift_verdict: str = ""
    drift_partitions: list[str] = field(default_factory=list)  # what drift rests on (drift_window.py)
    drift_rows: int = 0
    drift: list[FeatureDrift] = field(default_factory=list)
    prediction_psi: float | None = None
    day_performance: PerformanceSnapshot | None = None  # event day = day - label delay
    rolling_performance: PerformanceSnapshot | None = None  # the champion, recent event days
    validation_metric: float | None = None  # the champion's held-out value of the metric
    changes: list[ChangeVerdict] = field(default_factory=list)  # its losses since deployment
    calibration: str | None = None  # label rate vs predicted probability, when they disagree
    hindsight: HindsightVerdict | None = None  # how the champion's promotion turned out
    online: OnlineMonitoring | None = None  # the online endpoint's rows of `day` (tasks/monitoring/online.py)
    gate_refused: bool = False
    breaches: list[str] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        return [d.feature for d in self.drift if d.flagged]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "MonitoringReport":
        changes = [ChangeVerdict(**c) for c in raw.get("changes", [])]
        hindsight = HindsightVerdict(**raw["hindsight"]) if raw.get("hindsight") else None
        online = OnlineMonitoring.from_dict(raw["online"]) if raw.get("online") else None
        return cls(
            **{
                **raw,
                **measured_from_dict(raw),
                "changes": changes,
                "hindsight": hindsight,
                "online": online,
            }
        )


def build_report(
    storage: Storage, settings: Settings, champion: ModelVersionRef, day: date
) -> MonitoringReport:
    """Measure drift of `day`'s scored partition and the champion's performance on arrived labels."""
    spec = settings.dataset
    report = MonitoringReport(spec.name, champion.name, champion.version, day.isoformat())
    report.gate_refused = gate_refused(storage, spec, "inference", day)
    report.scored_by = scorer(storage, champion, day)
    if report.scored_by is None:
        report.drift_verdict = "not scored (refused by the gate or not run yet)"
    else:
        _measure_drift(storage, settings, report, day)
    event_day = spec.partitioning.shift(day, -spec.label.delay_days)
    default = settings.scoring.decision_threshold  # each version's metrics at its own threshold
    if event_scorer := scorer(storage, champion, event_day):
        report.day_performance = performance_snapshot(
            storage,
            spec,
            champion.name,
            event_scorer,
            [event_day],
            version_threshold(settings.registry, event_scorer, default, champion),
        )
    window = [
        spec.partitioning.shift(event_day, -i)
        for i in reversed(range(settings.monitoring.performance_window_days))
    ]
    since = since_deployment(
        storage,
        spec,
        champion.name,
        champion.version,
        event_day,
        settings.monitoring.change_max_rows_per_partition,
    )
    threshold, min_rows = champion.threshold(default), settings.monitoring.min_labelled_rows
    recent = newest_partitions_holding(since, window[0], min_rows)  # the window, or back to min_rows
    report.rolling_performance = rolling_holding_enough(
        performance_snapshot(storage, spec, champion.name, champion.version, window, threshold),
        recent,
        min_rows,
        champion.version,
        threshold,
    )
    report.validation_metric = validation_metric(
        settings.registry, champion.run_id, settings.monitoring.monitor_metric
    )
    _measure_change(storage, settings, report, champion, since, recent)
    floor, min_class_rows = settings.promotion.min_roc_auc, settings.training.min_class_rows
    report.breaches = breaches(report, settings.monitoring, floor, set(spec.expected_drift), min_class_rows)
    report.online = measure_online(storage, settings, champion, day, event_day, window)
    if report.online is not None:  # the same thresholds on the online traffic, its breaches named so
        report.breaches += online_named(
            breaches(
                online_view(report), settings.monitoring, floor, set(spec.expected_drift), min_class_rows
            ),
        )
    return report


def scorer(storage: Storage, champion: ModelVersionRef, day: date) -> str | None:
    """The version whose champion predictions of `day` to measure: the current champion's when
    it scored the day (the usual case, one lookup), else the latest version that did."""
    if scored_as_champion(storage, champion.name, champion.version, day):
        return champion.version
    versions = scoring_versions(storage, champion.name, day)
    return versions[-1] if versions else None


def scored_partition(
    storage: Storage, spec: DatasetSpec, model_name: str, version: str, key: date
) -> pd.DataFrame | None:
    """`version`'s champion predictions of partition `key` with their features (and `score`);
    empty when no version scored `key`, None (`OTHER_VERSION`) when another version did."""
    if scored_as_champion(storage, model_name, version, key):
        predictions = read_predictions(storage, spec, model_name, version, key)
        return join_on_ids(read_feature_partition(storage, spec, key), predictions, spec)
    return OTHER_VERSION if scoring_versions(storage, model_name, key) else pd.DataFrame()


def _measure_drift(storage: Storage, settings: Settings, report: MonitoringReport, day: date) -> None:
    """Drift of `day`'s scored rows, pooled with the recent partitions the same version scored
    when they are fewer than `min_drift_rows` (tasks/monitoring/drift_window.py)."""
    spec, monitoring = settings.dataset, settings.monitoring

    def scored(key: date) -> pd.DataFrame | None:
        try:
            return scored_partition(storage, spec, report.model_name, report.scored_by, key)
        except MissingDataError:  # its features deleted by retention: adds nothing
            return pd.DataFrame()

    latest = scored_partition(storage, spec, report.model_name, report.scored_by, day)
    report.rows_scored = len(latest)
    bound, knob = pool_bound(
        monitoring.drift_pool_partitions, settings.lake.retain_features_days, "INFERLOOP_RETAIN_FEATURES_DAYS"
    )
    pooled = pool_scored_rows(latest, day, scored, spec.partitioning, monitoring.min_drift_rows, bound, knob)
    report.drift_partitions, report.drift_rows = pooled.keys(), len(pooled.rows)
    report.drift_verdict = pooled.verdict(monitoring.min_drift_rows)
    if not pooled.enough(monitoring.min_drift_rows):
        return
    manifest = storage.read_json(catalog.predictions_manifest(report.model_name, report.scored_by, day))
    profile = load_reference_profile(settings.registry, manifest["model_run_id"])
    report.drift = feature_drift(pooled.rows, profile, spec, monitoring.drift_psi_threshold)
    report.prediction_psi = prediction_drift(pooled.rows["score"].to_numpy(), profile)


def rolling_holding_enough(
    rolling: PerformanceSnapshot | None,
    recent: pd.DataFrame,
    min_rows: int,
    version: str,
    threshold: float,
) -> PerformanceSnapshot | None:
    """The rolling window's metrics (`rolling`), or, where they rest on fewer than `min_rows`
    labelled rows (two-row hours, seven-row weeks), those of `recent`: the newest of the
    champion's partitions since deployment that hold them (`newest_partitions_holding`). A
    metric on 14 rows is noise, and a verdict that never comes leaves the ROC AUC floor and the
    drop rule unwatched. Not when the window holds no label at all: labels that stopped arriving
    are no verdict (drift decides), not a reason to judge the champion on old ones."""
    if rolling is None or rolling.labelled_rows >= min_rows or len(recent) <= rolling.labelled_rows:
        return rolling
    return snapshot_of(recent, version, threshold)


def _measure_change(
    storage: Storage,
    settings: Settings,
    report: MonitoringReport,
    champion: ModelVersionRef,
    frame: pd.DataFrame,
    recent: pd.DataFrame,
) -> None:
    """The change detector over the champion's losses since deployment (`frame`), its
    calibration over `recent` (the rolling window, or back to `min_labelled_rows`), and the
    hindsight verdict on its promotion."""
    monitoring = settings.monitoring
    threshold = champion.threshold(settings.scoring.decision_threshold)
    report.changes = performance_changes(frame, monitoring.monitor_metric, threshold, monitoring.change_delta)
    report.hindsight = promotion_hindsight(storage, settings, champion, frame)
    if len(recent) >= monitoring.min_labelled_rows:
        report.calibration = calibration_gap(
            recent["target"].to_numpy(), recent["score"].to_numpy(float), monitoring.calibration_alpha
        )


def newest_partitions_holding(frame: pd.DataFrame, start: date, rows: int) -> pd.DataFrame:
    """The rows of `frame` (labelled predictions in event order) from `start`, or from as far
    back as it takes to hold `rows` of them: on a feed of a few rows a partition, the rolling
    window alone never holds enough, however wrong the probabilities are."""
    if frame.empty:
        return frame
    days = frame["event_day"]
    per_day = days.value_counts().sort_index(ascending=False).cumsum()
    enough = per_day[per_day >= rows]
    first = min(start, enough.index[0]) if len(enough) else per_day.index[-1]
    return frame[days >= first]


@cache
def validation_metric(registry: RegistrySettings, run_id: str, metric: str) -> float | None:
    return model_registry(registry).run(run_id).metrics.get(f"holdout_{metric}")


def breaches(
    report: MonitoringReport,
    monitoring: MonitoringSettings,
    roc_auc_floor: float,
    expected_drift: frozenset[str] | set[str] = frozenset(),
    min_class_rows: int = 0,
) -> list[str]:
    """Thresholds this day's report crosses (each one a sentence a person can act on);
    `roc_auc_floor` is promotion's `min_roc_auc`: a champion below it is a breach too. Drift of
    the spec's `expected_drift` features is reported (flagged) but is not a breach, and neither
    is any drift while labels give a performance verdict (`drift_trigger` until_labelled). A
    class-weighing metric gives one only on `min_class_rows` of the rarer class."""
    rolling, metric = report.rolling_performance, monitoring.monitor_metric
    labels_decide = (
        rolling is not None
        and rolling.labelled_rows >= monitoring.min_labelled_rows
        and metric in rolling.metrics
        and (metric not in CLASS_METRICS or not 0 <= rolling.rarer_class_rows < min_class_rows)
    )
    drift_acts = monitoring.drift_trigger == "always" or not labels_decide
    found = [
        f"drift: {d.feature} PSI {d.psi:.3f} > {monitoring.drift_psi_threshold}"
        for d in report.drift
        if drift_acts and d.flagged and d.feature not in expected_drift
    ]
    if report.calibration:
        found.append(f"performance: {report.calibration}")
    if monitoring.performance_trigger == "change":
        found += [f"performance: {change.describe()}" for change in report.changes if change.changed]
    if not labels_decide:
        return found
    value = rolling.metrics[metric]
    if (
        monitoring.performance_trigger == "drop"
        and report.validation_metric is not None
        and report.validation_metric - value > monitoring.max_metric_drop
    ):
        found.append(
            f"performance: {metric} {value:.3f} on {rolling.labelled_rows} labelled rows is "
            f"{report.validation_metric - value:.3f} below its validation value "
            f"{report.validation_metric:.3f} "
            f"(tolerated {monitoring.max_metric_drop})"
        )
    if metric == "roc_auc" and value < roc_auc_floor:
        found.append(f"performance: roc_auc {value:.3f} below the floor {roc_auc_floor}")
    return found


def metric_rows(report: MonitoringReport) -> pd.DataFrame:
    """The report as a long table: one row per measured value (the online traffic's, when there
    was any, named `online_...`: series of their own in the lake and in MLflow)."""
    rows = measured_rows(report) + (measured_rows(report.online, f"{SOURCE}_") if report.online else [])
    frame = pd.DataFrame(rows, columns=["metric", "feature", "value", "flagged"])
    return frame.assign(
        day=report.day, model_version=report.model_version, value=frame["value"].astype(float)
    )


def measured_rows(source: MonitoringReport | OnlineMonitoring, prefix: str = "") -> list[tuple]:
    """(metric, feature, value, flagged) of one source of scored rows, metrics named `prefix...`."""
    rows = [(f"{prefix}rows_scored", None, source.rows_scored, False)]
    rows += [(f"{prefix}psi", d.feature, d.psi, d.flagged) for d in source.drift]
    rows += [(f"{prefix}ks", d.feature, d.ks, False) for d in source.drift if d.ks is not None]
    if source.prediction_psi is not None:
        rows.append((f"{prefix}prediction_psi", None, source.prediction_psi, False))
    for scope, snapshot in (("day", source.day_performance), ("rolling", source.rolling_performance)):
        if snapshot:
            rows += [
                (f"{prefix}{scope}_{name}", None, value, False) for name, value in snapshot.metrics.items()
            ]
            rows.append((f"{prefix}{scope}_labelled_rows", None, snapshot.labelled_rows, False))
    return rows


def save_report(storage: Storage, report: MonitoringReport) -> str:
    dataset, day = report.dataset, parse_key(report.day)
    storage.write_table(
        catalog.monitoring_metrics(dataset, day),
        pa.Table.from_pandas(metric_rows(report), preserve_index=False),
    )
    storage.write_json(catalog.monitoring_report(dataset, day), report.to_dict())
    return storage.uri(catalog.monitoring_day(dataset, day))


def load_history(storage: Storage, dataset: str, start: date, end: date) -> list[MonitoringReport]:
    """Saved reports of `start`..`end`, oldest first (days never monitored are absent)."""
    reports = []
    for day in storage.list_partitions(catalog.monitoring(dataset)):
        path = catalog.monitoring_report(dataset, day)
        if start <= day <= end and storage.exists(path):
            reports.append(MonitoringReport.from_dict(storage.read_json(path)))
    return reports


def log_to_mlflow(registry: RegistrySettings, report: MonitoringReport) -> None:
    """Metrics at step = the day's ordinal (an hour's: counted in hours) and timestamp = the
    partition's first instant, on the version's run."""
    day = parse_key(report.day)
    hour = day.hour if isinstance(day, datetime) else None
    timestamp = int(datetime(day.year, day.month, day.day, hour or 0, tzinfo=UTC).timestamp() * 1000)
    step = day.toordinal() if hour is None else day.toordinal() * 24 + hour
    metrics = metric_rows(report).dropna(subset=["value"])
    names = metrics["metric"] + metrics["feature"].map(lambda f: f"_{f}" if f else "")
    points = [MetricPoint(n, float(v), timestamp, step) for n, v in zip(names, metrics["value"], strict=True)]
    model_registry(registry).log_metric_points(
        _monitoring_run(registry, report.model_name, report.model_version), points
    )


@cache
def _monitoring_run(registry: RegistrySettings, model_name: str, version: str) -> str:
    return model_registry(registry).find_or_create_run(
        registry.monitoring_experiment_name,
        run_name=f"monitor {model_name} v{version}",
        tags={"inferloop.model": model_name, "inferloop.model_version": version},
    )


@task(name="monitor-day")
def monitor_day(
    storage: Storage, settings: Settings, champion: ModelVersionRef, day: date
) -> MonitoringReport:
    """Build, save and log one day's report."""
    report = build_report(storage, settings, champion, day)
    save_report(storage, report)
    log_to_mlflow(settings.registry, report)
    return report
