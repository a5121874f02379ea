from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from inferloop.core import catalog
from inferloop.core.settings import load_settings
from inferloop.tasks.data.synthetic import generate_day
from inferloop.tasks.monitoring import change_detection
from inferloop.tasks.monitoring.change_detection import (
    calibration_gap,
    detect_increase,
    loss_streams,
    past_partitions_fixed,
    performance_changes,
    since_deployment,
)
from tests.fixtures.synthetic_lake import FEED, FEED_DAYS, synthetic_lake


def stream(error_rates: list[float], rows_per_day: int = 100, seed: int = 0) -> pd.DataFrame:
    """Per-row 0/1 losses, `rows_per_day` a day, day i failing at error_rates[i]."""
    rng = np.random.default_rng(seed)
    start = date(2026, 1, 1)
    return pd.DataFrame(
        {
            "event_day": np.repeat(
                [start + timedelta(days=i) for i in range(len(error_rates))], rows_per_day
            ),
            "loss": np.concatenate([rng.random(rows_per_day) < rate for rate in error_rates]).astype(float),
        }
    )


def test_a_rise_in_the_error_rate_is_detected_near_where_it_happened():
    verdict = detect_increase("error", stream([0.2] * 20 + [0.4] * 10), delta=0.002)
    assert verdict.changed
    assert verdict.loss_before < 0.3 < verdict.loss_after
    assert date(2026, 1, 21) <= date.fromisoformat(verdict.changed_at_event_day) <= date(2026, 1, 26)
    assert "rose from" in verdict.describe()


def test_a_stable_or_improving_champion_raises_nothing():
    assert not detect_increase("error", stream([0.2] * 60), delta=0.002).changed
    assert not detect_increase("error", stream([0.4] * 20 + [0.2] * 20), delta=0.002).changed


def test_a_burst_of_errors_that_receded_is_described_as_it_was():
    """A cut at a short burst, then rows that do better than before it: on Elec2 the loop's
    replay printed 38 such retrains as "error rose from 0.304 to 0.234"."""
    verdict = detect_increase("error", stream([0.3] * 20 + [0.9] + [0.15] * 4, rows_per_day=48), 0.002)
    assert verdict.changed and verdict.loss_after < verdict.loss_before < verdict.loss_at_change
    assert "rose from" not in verdict.describe()
    assert verdict.describe().startswith(
        f"error changed at event day {verdict.changed_at_event_day}: {verdict.loss_before:.3f} before, "
        f"{verdict.loss_at_change:.3f} at the change, {verdict.loss_after:.3f} since"
    )


def test_small_feeds_need_more_days_of_evidence_than_big_ones():
    rates = [0.2] * 10 + [0.35] * 3
    assert detect_increase("error", stream(rates, rows_per_day=1000), delta=0.002).changed
    assert not detect_increase("error", stream(rates, rows_per_day=10), delta=0.002).changed


def test_balanced_accuracy_watches_misses_on_rare_positives_separately():
    """1 % positives: missing all of them barely moves the error rate, but it is a change."""
    rng = np.random.default_rng(1)
    days = 40
    target = (rng.random(days * 500) < 0.01).astype(int)
    scores = np.where(target == 1, 0.9, 0.1)
    scores[days * 250 :] = 0.1  # the second half misses every positive
    frame = pd.DataFrame(
        {
            "event_day": np.repeat([date(2026, 1, 1) + timedelta(days=i) for i in range(days)], 500),
            "target": target,
            "score": scores,
        }
    )
    assert set(loss_streams(frame, "balanced_accuracy", 0.5)) == {"error on positives", "error on negatives"}
    changed = {v.stream for v in performance_changes(frame, "balanced_accuracy", 0.5, 0.002) if v.changed}
    assert changed == {"error on positives"}
    [positives] = [v for v in performance_changes(frame, "balanced_accuracy", 0.5, 0.002) if v.changed]
    assert positives.loss_before < 0.5 and positives.loss_after == 1.0
    # What a retrain could learn from: every labelled row since the change, not only positives.
    changed = date.fromisoformat(positives.changed_at_event_day)
    assert positives.rows_after == 500 * ((date(2026, 1, 1) + timedelta(days=days - 1) - changed).days + 1)


def test_ranking_metrics_watch_the_squared_error_of_each_class():
    frame = pd.DataFrame({"event_day": [date(2026, 1, 1)] * 3, "target": [1, 0, 1], "score": [0.8, 0.4, 0.5]})
    streams = loss_streams(frame, "roc_auc", 0.5)
    assert set(streams) == {"squared error on positives", "squared error on negatives"}
    assert np.allclose(streams["squared error on positives"]["loss"], [0.04, 0.25])
    assert np.allclose(streams["squared error on negatives"]["loss"], [0.16])


def test_a_majority_class_model_is_caught_by_calibration():
    target = np.r_[np.ones(57), np.zeros(43)]
    gap = calibration_gap(target, np.full(100, 0.02), alpha=0.001)
    assert gap and "57.0% positives" in gap and "2.0%" in gap
    assert calibration_gap(target, np.full(100, 0.55), alpha=0.001) is None


def test_a_replay_reads_a_versions_past_partitions_once_a_monitor_every_time(tmp_path, monkeypatch):
    spec = load_settings().dataset
    lake = synthetic_lake(spec, tmp_path / "lake")

    def score(version: str, day: date, role: str = "champion") -> None:
        ids = generate_day(FEED, FEED_DAYS.index(day))[0]["transaction_id"]
        scores = np.linspace(0, 1, len(ids))
        table = pa.table({"transaction_id": ids, "score": scores, "predicted_label": scores >= 0.5})
        lake.write_table(catalog.predictions_file("m", version, day), table)
        lake.write_json(catalog.predictions_manifest("m", version, day), {"role": role})

    read = []
    real = change_detection.labelled_predictions
    monkeypatch.setattr(
        change_detection,
        "labelled_predictions",
        lambda *args: read.extend((args[3], day) for day in args[-1]) or real(*args),
    )
    for day in FEED_DAYS[:2]:
        score("1", day)
    score("2", FEED_DAYS[0], role="shadow")  # not v2's as champion: never in its history
    score("2", FEED_DAYS[1])
    fresh = since_deployment(lake, spec, "m", "1", FEED_DAYS[1], max_rows_per_partition=150)
    assert read == [("1", FEED_DAYS[0]), ("1", FEED_DAYS[1])] and len(fresh) == 2 * 150  # 200-row days
    assert list(fresh["event_day"]) == [FEED_DAYS[0]] * 150 + [FEED_DAYS[1]] * 150
    with past_partitions_fixed():
        read.clear()
        first = since_deployment(lake, spec, "m", "1", FEED_DAYS[1], 150)
        again = since_deployment(lake, spec, "m", "1", FEED_DAYS[1], 150)
        assert read == [("1", FEED_DAYS[0]), ("1", FEED_DAYS[1])]  # once, not twice
        smaller = since_deployment(lake, spec, "m", "1", FEED_DAYS[1], 100)
        other = since_deployment(lake, spec, "m", "2", FEED_DAYS[1], 150)
        score("1", FEED_DAYS[2])
        read.clear()
        later = since_deployment(lake, spec, "m", "1", FEED_DAYS[2], 150)
        assert read == [("1", day) for day in FEED_DAYS]  # another version was asked for meanwhile
        read.clear()
        since_deployment(lake, spec, "m", "1", FEED_DAYS[2], 150)
        assert read == []
    pd.testing.assert_frame_equal(first, fresh)
    pd.testing.assert_frame_equal(again, fresh)
    assert len(smaller) == 200 and list(other["event_day"]) == [FEED_DAYS[1]] * 150
    pd.testing.assert_frame_equal(later.iloc[:300], fresh)
    with past_partitions_fixed():  # what a caller does to its frame stays with it (one partition)
        since_deployment(lake, spec, "m", "1", FEED_DAYS[0], 150).loc[:, "score"] = -1.0
        assert (since_deployment(lake, spec, "m", "1", FEED_DAYS[0], 150)["score"] >= 0).all()
    read.clear()
    since_deployment(lake, spec, "m", "1", FEED_DAYS[2], 150)
    assert read == [("1", day) for day in FEED_DAYS]  # outside a replay, the lake is the truth every time
