"""What a day's monitoring report counts as a breach, and the report's round trip through JSON
(tasks/monitoring.py: breaches, metric_rows, to_dict/from_dict). No I/O."""

import json
from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from inferloop.core.dataset import DatasetSpec
from inferloop.core.settings import load_settings
from inferloop.tasks.model.evaluation import reference_profile
from inferloop.tasks.monitoring.change_detection import ChangeVerdict
from inferloop.tasks.monitoring.daily_report import (
    MonitoringReport,
    breaches,
    metric_rows,
    newest_partitions_holding,
    rolling_holding_enough,
)
from inferloop.tasks.monitoring.drift import FeatureDrift, feature_drift
from inferloop.tasks.monitoring.performance import PerformanceSnapshot, snapshot_of

SPEC = DatasetSpec(
    name="toy",
    id_column="id",
    time_column="event_time",
    label={"column": "target"},
    features={"amount": "numeric", "age": "numeric", "channel": "categorical"},
)
# Thresholds chosen so every boundary below is exact in binary floating point.
SETTINGS = load_settings(  # the fixed-drop rule: the change trigger is tested below
    drift_psi_threshold=0.25,
    min_labelled_rows=200,
    max_metric_drop=0.125,
    min_roc_auc=0.5,
    performance_trigger="drop",
)


def toy_frame(rows: int, seed: int, age_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3.0, 1.0, rows),
            "age": rng.normal(40.0, 12.0, rows) + age_shift,
            "channel": rng.choice(["web", "pos", "atm"], rows, p=[0.5, 0.3, 0.2]),
        }
    )


def snapshot(value: float, rows: int = 500, metric: str = "roc_auc") -> PerformanceSnapshot:
    return PerformanceSnapshot("3", "2026-03-01", "2026-03-07", rows, {metric: value, "accuracy": 0.9})


def report(**fields) -> MonitoringReport:
    return MonitoringReport("toy", "toy-classifier", "3", "2026-03-08", **fields)


@pytest.fixture(scope="module")
def profile() -> dict:
    frame = toy_frame(50_000, 0)
    return reference_profile(frame, np.random.default_rng(0).beta(1.0, 8.0, len(frame)), SPEC)


@pytest.mark.parametrize("age_shift", [0.0, 1.5, 3.0, 6.0, 8.0, 12.0])
def test_drift_breaches_exactly_the_features_above_the_psi_threshold(profile, age_shift):
    drift = feature_drift(
        toy_frame(10_000, 1, age_shift), profile, SPEC, SETTINGS.monitoring.drift_psi_threshold
    )
    found = breaches(report(drift=drift), SETTINGS.monitoring, SETTINGS.promotion.min_roc_auc)
    above = [d for d in drift if d.psi > SETTINGS.monitoring.drift_psi_threshold]
    assert [b.split()[1] for b in found] == [d.feature for d in above]
    assert all(b.startswith("drift: ") and "> 0.25" in b for b in found)
    assert {d.feature for d in above} <= {"age"}  # only the shifted column ever drifts


def test_a_large_shift_is_a_breach_and_no_shift_is_not(profile):
    # Guards the parametrised test above against passing with no breach at all.
    shifted = feature_drift(
        toy_frame(10_000, 1, 12.0), profile, SPEC, SETTINGS.monitoring.drift_psi_threshold
    )
    same = feature_drift(toy_frame(10_000, 1), profile, SPEC, SETTINGS.monitoring.drift_psi_threshold)
    assert breaches(report(drift=shifted), SETTINGS.monitoring, SETTINGS.promotion.min_roc_auc) == [
        f"drift: age PSI {shifted[1].psi:.3f} > 0.25"
    ]
    assert breaches(report(drift=same), SETTINGS.monitoring, SETTINGS.promotion.min_roc_auc) == []


def test_drift_of_a_feature_expected_to_drift_is_reported_but_never_a_breach(profile):
    shifted = feature_drift(
        toy_frame(10_000, 1, 12.0), profile, SPEC, SETTINGS.monitoring.drift_psi_threshold
    )
    shifted_report = report(drift=shifted)
    assert shifted_report.drifted_features == ["age"]  # still flagged in the report
    assert breaches(shifted_report, SETTINGS.monitoring, SETTINGS.promotion.min_roc_auc, {"age"}) == []


@pytest.mark.parametrize(
    ("labelled_rows", "trigger", "acts"),
    [
        (199, "until_labelled", True),  # too few labels for a performance verdict: drift is the signal
        (200, "until_labelled", False),  # labels decide; drift is reported only
        (200, "always", True),
    ],
)
def test_drift_is_a_breach_only_while_labels_cannot_decide(profile, labelled_rows, trigger, acts):
    shifted = feature_drift(
        toy_frame(10_000, 1, 12.0), profile, SPEC, SETTINGS.monitoring.drift_psi_threshold
    )
    healthy = report(
        drift=shifted, rolling_performance=snapshot(0.875, labelled_rows), validation_metric=0.875
    )
    monitoring = SETTINGS.monitoring.model_copy(update={"drift_trigger": trigger})
    found = breaches(healthy, monitoring, SETTINGS.promotion.min_roc_auc)
    assert healthy.drifted_features == ["age"]  # flagged in the report either way
    assert found == ([f"drift: age PSI {shifted[1].psi:.3f} > 0.25"] if acts else [])


def test_performance_needs_enough_labelled_rows():
    # 0.5 below a validation value of 0.875: a breach, if there are enough labels to tell.
    assert (
        breaches(
            report(rolling_performance=snapshot(0.625, 199), validation_metric=0.875),
            SETTINGS.monitoring,
            SETTINGS.promotion.min_roc_auc,
        )
        == []
    )
    found = breaches(
        report(rolling_performance=snapshot(0.625, 200), validation_metric=0.875),
        SETTINGS.monitoring,
        SETTINGS.promotion.min_roc_auc,
    )
    assert found == [
        "performance: roc_auc 0.625 on 200 labelled rows is 0.250 below its validation value 0.875 "
        "(tolerated 0.125)"
    ]


@pytest.mark.parametrize(
    ("value", "breached"),
    [(0.875, False), (0.8125, False), (0.75, False), (0.7421875, True), (0.625, True)],
)
def test_the_drop_rule_is_relative_to_the_validation_metric(value, breached):
    # validation 0.875, tolerated drop 0.125: 0.75 is the last tolerated value.
    found = breaches(
        report(rolling_performance=snapshot(value), validation_metric=0.875),
        SETTINGS.monitoring,
        SETTINGS.promotion.min_roc_auc,
    )
    assert bool(found) == breached
    assert all("below its validation value 0.875" in b for b in found)


def test_no_drop_rule_without_a_validation_metric():
    assert (
        breaches(
            report(rolling_performance=snapshot(0.625), validation_metric=None),
            SETTINGS.monitoring,
            SETTINGS.promotion.min_roc_auc,
        )
        == []
    )


def test_the_roc_auc_floor_applies_even_when_validation_was_as_low():
    # 0.46875 is within the tolerated drop of its validation value 0.5, but below the floor.
    found = breaches(
        report(rolling_performance=snapshot(0.46875), validation_metric=0.5),
        SETTINGS.monitoring,
        SETTINGS.promotion.min_roc_auc,
    )
    assert found == ["performance: roc_auc 0.469 below the floor 0.5"]
    assert (
        breaches(
            report(rolling_performance=snapshot(0.5), validation_metric=0.5),
            SETTINGS.monitoring,
            SETTINGS.promotion.min_roc_auc,
        )
        == []
    )


def test_the_roc_auc_floor_is_only_for_roc_auc():
    pr_auc = load_settings(
        min_roc_auc=0.5, max_metric_drop=0.125, monitor_metric="pr_auc", performance_trigger="drop"
    )
    low = report(rolling_performance=snapshot(0.25, metric="pr_auc"), validation_metric=0.3125)
    assert breaches(low, pr_auc.monitoring, pr_auc.promotion.min_roc_auc) == []


def test_a_missing_monitored_metric_is_not_a_breach():
    # One class only among the labels: label_metrics leaves out the ranking metrics.
    only_accuracy = PerformanceSnapshot("3", "2026-03-01", "2026-03-07", 500, {"accuracy": 0.5})
    assert (
        breaches(
            report(rolling_performance=only_accuracy, validation_metric=0.875),
            SETTINGS.monitoring,
            SETTINGS.promotion.min_roc_auc,
        )
        == []
    )


def test_a_roc_auc_on_a_few_positives_is_no_verdict_and_drift_decides_instead(profile):
    # 4 positives among 500 rows: a ROC AUC of 0.3 there is noise, not a model below the floor.
    few = replace(snapshot(0.3), rarer_class_rows=4)
    drift = feature_drift(toy_frame(10_000, 1, 12.0), profile, SPEC, SETTINGS.monitoring.drift_psi_threshold)
    floor = SETTINGS.promotion.min_roc_auc
    found = breaches(report(rolling_performance=few, drift=drift), SETTINGS.monitoring, floor, set(), 20)
    assert found and all(b.startswith("drift: ") for b in found)
    enough = replace(few, rarer_class_rows=20)
    found = breaches(report(rolling_performance=enough), SETTINGS.monitoring, floor, set(), 20)
    assert found == [f"performance: roc_auc 0.300 below the floor {floor}"]


def full_report() -> MonitoringReport:
    return report(
        rows_scored=10_000,
        scored_by="3",
        drift_verdict="measured",
        drift=[
            FeatureDrift("amount", "numeric", 10_000, 0.0123, ks=0.011, ks_pvalue=0.2),
            FeatureDrift("age", "numeric", 10_000, 0.61, ks=0.31, ks_pvalue=0.0, flagged=True),
            FeatureDrift("channel", "categorical", 10_000, 0.004, unseen_share=0.0),
        ],
        prediction_psi=0.02,
        day_performance=snapshot(0.8, 300),
        rolling_performance=snapshot(0.82, 2_000),
        validation_metric=0.875,
        gate_refused=False,
        breaches=["drift: age PSI 0.610 > 0.25"],
    )


@pytest.mark.parametrize(
    "original", [full_report(), report(drift_verdict="not scored")], ids=["full", "empty"]
)
def test_a_report_round_trips_through_json(original):
    restored = MonitoringReport.from_dict(json.loads(json.dumps(original.to_dict())))
    assert restored == original
    assert restored.drifted_features == original.drifted_features


def test_metric_rows_has_one_row_per_measured_value():
    rows = metric_rows(full_report())
    # rows_scored + 3 PSI + 2 KS + prediction PSI + (2 metrics + labelled rows) for day and rolling
    assert len(rows) == 1 + 3 + 2 + 1 + 3 + 3
    assert rows.loc[rows["flagged"], "feature"].tolist() == ["age"]
    assert set(rows["day"]) == {"2026-03-08"} and set(rows["model_version"]) == {"3"}
    assert rows.set_index("metric").loc["rolling_labelled_rows", "value"] == 2_000


def test_the_change_trigger_breaches_on_a_detected_rise_and_on_calibration_not_on_a_fixed_drop():
    change = load_settings(min_roc_auc=0.5, performance_trigger="change").monitoring
    rose = ChangeVerdict("error", 900, True, 0.2, 0.4, "2026-03-04")
    steady = ChangeVerdict("error", 900, False)
    dropped = report(rolling_performance=snapshot(0.625), validation_metric=0.875)
    assert breaches(dropped, change, 0.5) == []  # 0.25 below validation is no evidence by itself
    found = breaches(
        report(changes=[rose, steady], calibration="calibration: labels hold 57.0%"), change, 0.5
    )
    assert found == [
        "performance: calibration: labels hold 57.0%",
        "performance: error rose from 0.200 to 0.400 (change detected at event day 2026-03-04, "
        "900 labelled rows since deployment)",
    ]
    assert breaches(report(changes=[rose]), SETTINGS.monitoring, 0.5) == []  # drop rule: not used


def test_calibration_looks_back_as_far_as_it_takes_to_hold_enough_rows():
    days = [date(2026, 1, d) for d in range(1, 11)]  # 10 partitions of 7 rows
    frame = pd.DataFrame({"event_day": [d for d in days for _ in range(7)], "target": 0, "score": 0.5})

    def first_day(rows: int):
        return newest_partitions_holding(frame, days[7], rows)["event_day"].min()

    assert first_day(14) == days[7]  # the rolling window holds enough
    assert first_day(30) == days[5]  # 5 partitions: 35 rows
    assert len(newest_partitions_holding(frame, days[7], 100)) == 70  # all there is, still too few
    assert newest_partitions_holding(frame.head(0), days[7], 30).empty


def test_a_rolling_window_of_too_few_labelled_rows_takes_back_the_champions_earlier_partitions():
    # 40 hourly partitions of 2 rows: the champion right on the older 30, wrong on the last 10.
    hours = list(pd.date_range("2026-03-01", periods=40, freq="h").to_pydatetime())
    target = np.tile([0, 1], 40)
    right = np.repeat(np.arange(40) < 30, 2)
    since = pd.DataFrame(
        {
            "event_day": np.repeat(hours, 2),
            "target": target,
            "score": np.where(right, target, 1 - target) * 1.0,
        }
    )
    window = since[since["event_day"] >= hours[-7]]  # 7 partitions: 14 rows
    rolling = snapshot_of(window, "3", 0.5)

    def widened(rows: int, snapshot=rolling):
        recent = newest_partitions_holding(since, hours[-7], rows)
        return rolling_holding_enough(snapshot, recent, rows, "3", 0.5)

    assert (rolling.labelled_rows, widened(60).labelled_rows) == (14, 60)
    assert widened(60).first_event_day == hours[10].isoformat()
    assert widened(60).last_event_day == hours[-1].isoformat()
    assert (rolling.metrics["accuracy"], widened(60).metrics["accuracy"]) == (0.0, 20 / 30)
    # Enough in the window: as it was; more than the champion ever scored: all of it, still short.
    assert widened(14) is rolling
    assert widened(500).labelled_rows == 80
    # No label in the window (labels stopped arriving): no verdict, whatever older rows hold.
    assert widened(60, snapshot=None) is None
