"""The loop against the natural baselines (tasks/monitoring/policy_comparison.py) on a small
synthetic lake: a cron that retrains every k partitions on what the loop knew at the time, the
first model kept, all scored on exactly the loop's labelled rows; and how the verdict pairs two
policies' rows for the bootstrap (tasks/model/comparison.py, tested in tests/tasks/model)."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from threadpoolctl import threadpool_limits

from inferloop.core import catalog
from inferloop.core.settings import TrainingSettings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import (
    load_labelled_day,
    positive_target,
    prepare_features,
    write_synthetic_feed,
)
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.gate.expectations import suite_name
from inferloop.tasks.model.prediction import positive_scores
from inferloop.tasks.model.training import fitted
from inferloop.tasks.monitoring.policy_comparison import (
    FIRST_MODEL,
    LOOP,
    Effort,
    compare_policies,
    loop_effort,
    paired_policies,
    periodic_baseline,
    periodic_baselines,
    periods,
    rejected_challengers,
    rejections_in_hindsight,
)
from inferloop.tasks.monitoring.replay import ReplayDay, no_predictions, static_predictions
from inferloop.tasks.monitoring.retrain_policy import RetrainDecision

CONFIG = GeneratorConfig(days=9, rows_per_day=150)
DAYS = [CONFIG.day(i) for i in range(CONFIG.days)]
REPLAYED = DAYS[3:]  # day indices 0..5; the first model is fitted on DAYS[0..1]
WINDOW = 2  # train_window_days


@pytest.fixture(autouse=True)
def one_openmp_thread():
    """These windows are a few hundred rows: on a loaded 2-core machine, OpenMP threads spend
    longer waiting on each other than fitting (8 s instead of 2 s for the first test here)."""
    with threadpool_limits(1, user_api="openmp"):
        yield


@pytest.fixture
def lake(spec, tmp_path) -> Storage:
    storage = Storage((tmp_path / "lake").as_uri())
    write_synthetic_feed.fn(storage, spec, CONFIG)
    return storage


def fitted_on_days(storage: Storage, spec, days: list[date]):
    """The project's model of `days` (its tree size chosen on them, as any window's)."""
    return fitted(pd.concat([load_labelled_day(storage, spec, d) for d in days], ignore_index=True), spec)


@pytest.fixture
def first_model(lake, spec):
    return fitted_on_days(lake, spec, DAYS[:2])


def loop_frame(storage: Storage, spec, days: list[date]) -> pd.DataFrame:
    """What the loop would have: every other row of each day (the rest quarantined, say), its
    label, a constant score."""
    frames = []
    for day in days:
        rows = load_labelled_day(storage, spec, day).iloc[::2]
        frames.append(
            pd.DataFrame(
                {
                    spec.id_column: rows[spec.id_column].to_numpy(),
                    "score": 0.5,
                    "target": positive_target(rows, spec).to_numpy(),
                    "event_day": day,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_a_periodic_baseline_retrains_at_every_kth_day_and_scores_the_loops_rows(lake, spec, first_model):
    loop = loop_frame(lake, spec, REPLAYED)
    runs = periodic_baselines(lake, spec, first_model, loop, REPLAYED, [1, 2, 4], WINDOW)

    # Day indices 1..5 for k=1; 2, 4 for k=2; 4 for k=4 (0 is the first model's).
    assert [run.retrains for run in runs] == [5, 2, 1]
    assert [w.first_scored for w in runs[1].windows] == [REPLAYED[2].isoformat(), REPLAYED[4].isoformat()]
    assert [run.compute_seconds > 0 for run in runs] == [True, True, True]
    for run in runs:
        predictions = run.predictions(spec)
        # Exactly the loop's labelled rows, day by day, with their labels.
        assert len(predictions) == len(loop)
        assert predictions.sort_values(spec.id_column)[[spec.id_column, "target", "event_day"]].equals(
            loop.sort_values(spec.id_column)[[spec.id_column, "target", "event_day"]]
        )


def test_the_model_of_day_d_knows_only_labels_that_arrived_by_d_minus_1(lake, spec, first_model):
    loop = loop_frame(lake, spec, REPLAYED)
    run = periodic_baseline(lake, spec, first_model, loop, REPLAYED, every=1, train_window_days=WINDOW)
    delay = spec.label.delay_days
    for window in run.windows:
        scored_day = date.fromisoformat(window.first_scored)
        assert date.fromisoformat(window.last_day) == scored_day - timedelta(days=1 + delay)
        assert (window.days_used, window.rows) == (WINDOW, WINDOW * CONFIG.rows_per_day)

    # The scores of the last day are those of a model fitted on the two days whose labels had
    # arrived, not of one that also saw the next day's (which the lake holds).
    day = REPLAYED[-1]
    last = day - timedelta(days=1 + delay)
    features = load_labelled_day(lake, spec, day).iloc[::2]
    predictions = run.predictions(spec)
    scores = predictions[predictions["event_day"] == day].sort_values(spec.id_column)["score"].to_numpy()
    known = fitted_on_days(lake, spec, [last - timedelta(days=1), last])
    peeking = fitted_on_days(lake, spec, [last, last + timedelta(days=1)])
    prepared = prepare_features(features.sort_values(spec.id_column), spec)
    assert scores == pytest.approx(positive_scores(known, prepared))
    assert scores != pytest.approx(positive_scores(peeking, prepared))


def test_a_baselines_window_widens_to_the_loops_training_rows(lake, spec, first_model):
    """A cron on fewer rows than the loop trains on would be a straw man: its windows take back
    earlier days, as the loop's do, until they hold `train_window_rows` (and stop at the lake's
    first day)."""
    loop = loop_frame(lake, spec, REPLAYED[:2])
    training = TrainingSettings(train_window_rows=3 * CONFIG.rows_per_day)
    run = periodic_baselines(lake, spec, first_model, loop, REPLAYED[:2], [1], 1, training)[0]
    (window,) = run.windows
    last = date.fromisoformat(window.last_day)
    assert (window.days_used, window.rows) == (3, 3 * CONFIG.rows_per_day)
    assert date.fromisoformat(window.first_day) == last - timedelta(days=2)

    everything = TrainingSettings(train_window_rows=100 * CONFIG.rows_per_day)
    run = periodic_baselines(lake, spec, first_model, loop, REPLAYED[:2], [1], 1, everything)[0]
    assert run.windows[0].first_day == DAYS[0].isoformat()


def test_refused_and_missing_days_are_skipped_and_a_one_class_window_keeps_the_model(lake, spec, first_model):
    loop = loop_frame(lake, spec, REPLAYED[:4])
    # The gate refused DAYS[2]; DAYS[3]'s labels never arrived.
    refusal = catalog.validation_report(suite_name(spec, "inference"), DAYS[2])
    lake.write_json(refusal, {"decision": "refused"})
    lake.delete_dir(catalog.labels(spec.name, spec.label_arrival(DAYS[3])))
    run = periodic_baseline(lake, spec, first_model, loop, REPLAYED[:3], every=1, train_window_days=WINDOW)
    # Index 1 (DAYS[4]) trains on DAYS[1..2]: DAYS[2] refused, one day left. Index 2 (DAYS[5])
    # would train on DAYS[2..3]: nothing left, so the model of index 1 carries on.
    assert [(w.first_scored, w.days_used) for w in run.windows] == [(REPLAYED[1].isoformat(), 1)]
    assert run.retrains == 1 and len(run.predictions(spec)) == len(loop[loop["event_day"] < REPLAYED[3]])

    # Index 3 (DAYS[6]) trains on DAYS[3..4]: DAYS[3] has no labels and DAYS[4] only negatives
    # now: a single class, so no fit and no retrain.
    labels = lake.read_table(catalog.labels(spec.name, spec.label_arrival(DAYS[4]))).to_pandas()
    lake.write_table(
        catalog.labels_file(spec.name, spec.label_arrival(DAYS[4]), DAYS[4]),
        pa.Table.from_pandas(labels.assign(**{spec.label.column: 0}), preserve_index=False),
    )
    run = periodic_baseline(lake, spec, first_model, loop, REPLAYED[:4], every=3, train_window_days=WINDOW)
    assert run.retrains == 0


def test_the_loops_effort_comes_from_its_ledger():
    ledger = [
        RetrainDecision("2026-01-05", "retrain", outcome="v2 promote: passed every gate"),
        RetrainDecision("2026-01-09", "retrain", outcome="v3 reject: worse"),
        RetrainDecision("2026-01-10", "suppressed", suppressed_because="cooldown"),
    ]
    ledger[0].compute_seconds = 2.5  # recorded by the retrain flow (older ledgers have none)
    assert loop_effort(ledger) == Effort(
        retrains=2, promotions=1, compute_seconds=2.5, hindsight="none judged", rejections="none judged"
    )
    assert loop_effort(ledger, {"3": "worse", "5": "better"}).hindsight == "1 better, 1 worse"
    assert loop_effort(ledger, rejections_judged=["better"]).rejections == "1 better"
    assert rejected_challengers(ledger) == [("3", date(2026, 1, 9))]


def test_the_comparison_holds_every_policy_on_the_same_rows_with_a_verdict(lake, spec, first_model):
    # A loop that never replaced its first model.
    loop = static_predictions(lake, spec, first_model, loop_frame(lake, spec, REPLAYED))
    replayed = [ReplayDay(d.isoformat(), "1") for d in REPLAYED]
    comparison = compare_policies(
        lake,
        spec,
        replayed,
        loop,
        static_predictions(lake, spec, first_model, loop),
        first_model,
        Effort(1, 0, 3.0),
        baseline_every=[1, 3],
        train_window_days=WINDOW,
        threshold=0.5,
        monitor_metric="accuracy",
    )
    assert [(p.policy, p.rows, p.retrains, p.promotions) for p in comparison.policies] == [
        (LOOP, len(loop), 1, 0),
        (FIRST_MODEL, len(loop), 0, 0),
        ("retrain every 3 partitions", len(loop), 1, 1),
        ("retrain every partition", len(loop), 5, 5),
    ]
    assert comparison.policy(LOOP).compute_seconds == 3.0
    assert comparison.policy(LOOP).metrics == comparison.policy(FIRST_MODEL).metrics
    assert comparison.verdict.startswith("The loop: accuracy ")
    assert "first model kept: " in comparison.verdict
    assert "the loop is level with it (no clear difference" in comparison.verdict
    # One point per replayed day (6 days, at most 24 periods) and policy, on that day's rows.
    assert len(comparison.over_time) == len(REPLAYED) * 4
    assert {p["rows"] for p in comparison.over_time} == {CONFIG.rows_per_day // 2}
    assert comparison.to_dict()["policies"][0]["policy"] == LOOP


def test_with_no_labelled_row_scored_there_is_nothing_to_compare(lake, spec, first_model):
    replayed = [ReplayDay(d.isoformat(), "1", refused=True) for d in REPLAYED[:2]]
    empty = static_predictions(lake, spec, first_model, no_predictions(spec))
    comparison = compare_policies(
        lake,
        spec,
        replayed,
        empty,
        empty,
        first_model,
        Effort(0, 0, 0.0),
        baseline_every=[1],
        train_window_days=WINDOW,
        threshold=0.5,
        monitor_metric="roc_auc",
    )
    assert (comparison.policies, comparison.over_time) == ([], [])
    assert comparison.verdict.startswith(f"No partition of {REPLAYED[0]}..{REPLAYED[1]} was scored")
    assert "2 of 2 refused" in comparison.verdict


@pytest.mark.parametrize(
    ("days", "lengths"), [(6, [1] * 6), (24, [1] * 24), (25, [2] * 12 + [1]), (100, [5] * 20)]
)
def test_days_are_cut_into_at_most_24_equal_periods(days, lengths):
    replayed = [DAYS[0] + timedelta(days=i) for i in range(days)]
    cut = periods(replayed)
    assert [len(p) for p in cut] == lengths
    assert [day for period in cut for day in period] == replayed


# The verdict's paired bootstrap


def two_policies(good_signal: float, seed: int = 1, days: int = 30, rows: int = 40) -> tuple:
    """Policy a's scores carry `good_signal` of the label, policy b's none; the same rows."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 2, days * rows)
    event_day = np.repeat([DAYS[0] + timedelta(days=i) for i in range(days)], rows)
    noise_a, noise_b = rng.random(days * rows), rng.random(days * rows)
    a = pd.DataFrame({"score": good_signal * target + (1 - good_signal) * noise_a, "target": target})
    b = pd.DataFrame({"score": noise_b, "target": target})
    return a.assign(event_day=event_day), b.assign(event_day=event_day)


def test_the_verdict_pairs_the_policies_rows_by_event_day_at_90_percent():
    better, worse = two_policies(good_signal=0.6)
    paired = paired_policies(better, worse, "roc_auc", threshold=0.5)
    assert (paired.verdict, paired.confidence) == ("clearly better", 0.9)
    assert (paired.rows, paired.groups) == (1200, 30)
    assert paired_policies(worse, better, "roc_auc", threshold=0.5).verdict == "clearly worse"


def test_the_bootstrap_refuses_policies_scored_on_different_rows():
    a, b = two_policies(good_signal=0.5)
    with pytest.raises(ValueError, match="same rows"):
        paired_policies(a, b.iloc[1:], "accuracy", threshold=0.5)
    shuffled = b.assign(target=b["target"].to_numpy()[::-1])  # same length, other rows
    with pytest.raises(ValueError, match="same rows"):
        paired_policies(a, shuffled, "accuracy", threshold=0.5)


def test_hindsight_counts_final_verdicts_in_a_fixed_order():
    from inferloop.tasks.monitoring.policy_comparison import hindsight_summary

    assert hindsight_summary(["worse", "better", "better"]) == "2 better, 1 worse"
    assert hindsight_summary([]) == "none judged"


def test_a_rejected_challenger_is_judged_on_the_partitions_after_its_rejection_that_hold_enough_rows():
    # The loop's rows carry no signal; challenger "2" would have scored with a strong one.
    challenger, loop = two_policies(good_signal=0.6, days=30, rows=40)
    loop = loop.assign(threshold=0.5)  # each row at the threshold of the version that scored it
    asked = {}

    def challenger_scores(version: str, rows: pd.DataFrame) -> tuple[np.ndarray, float]:
        asked[version] = sorted(set(rows["event_day"]))
        source = challenger if version == "2" else loop
        return source.loc[rows.index, "score"].to_numpy(), 0.5

    rejected = [("2", DAYS[0] + timedelta(days=3)), ("3", DAYS[0]), ("4", DAYS[0] + timedelta(days=25))]
    verdicts = rejections_in_hindsight(loop, rejected, challenger_scores, 400, "accuracy", threshold=0.5)

    # 400 rows: the 10 partitions after the rejection's; "4" has only 4 partitions after it.
    assert asked["2"] == [DAYS[0] + timedelta(days=i) for i in range(4, 14)]
    assert "4" not in asked and len(verdicts) == 2
    assert verdicts[0] == "better"  # rejecting "2" cost the loop
    assert verdicts[1] == "no clear difference"  # "3" scores as the loop did
