import numpy as np
import pandas as pd
import pytest

from inferloop.core.dataset import DatasetSpec
from inferloop.tasks.data.feeds import positive_target, prepare_features, write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.gate.partition_gate import gate_training_window
from inferloop.tasks.model.optimised import booster_of
from inferloop.tasks.model.training import (
    TrainingDataError,
    chosen_capacity,
    earlier_partitions_needed,
    fit_model,
    held_out_partitions,
    split_by_time,
)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Five gated days of 3,000 labelled rows, once for the module (tests only read the frame)."""
    from inferloop.core.settings import load_settings
    from inferloop.core.storage import lake_storage

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INFERLOOP_STORAGE_URI", (tmp_path_factory.mktemp("training") / "lake").as_uri())
        settings = load_settings()
        storage = lake_storage(settings.lake)
        config = GeneratorConfig(days=5, rows_per_day=3_000)
        days = write_synthetic_feed.fn(storage, settings.dataset, config)
        frame, _ = gate_training_window.fn(storage, settings.dataset, days[0], days[-1], settings.gate)
    return frame


@pytest.fixture(scope="module")
def fitted(labelled):
    """fit_model on `labelled` with the default settings, once for the module."""
    from inferloop.core.settings import load_settings

    settings = load_settings()
    return fit_model.fn(labelled, settings.dataset, settings.training, settings.scoring, "roc_auc")


def test_window_joins_every_arrived_label(labelled, settings):
    assert len(labelled) == 5 * 3_000
    assert set(labelled[settings.dataset.label.column].unique()) == {0, 1}


def test_split_never_trains_on_held_out_days(labelled, settings):
    train, holdout = split_by_time(labelled, settings.dataset, holdout_days=2)
    assert train["event_time"].max() < holdout["event_time"].min()
    assert len(train) + len(holdout) == len(labelled)
    assert holdout["event_time"].dt.date.nunique() == 2


def test_fit_reports_holdout_metrics(fitted):
    assert fitted.metrics["roc_auc"] > 0.8
    assert set(fitted.metrics) == {"accuracy", "roc_auc", "pr_auc", "f1", "balanced_accuracy", "log_loss"}
    assert (fitted.train_rows, fitted.holdout_rows) == (4 * 3_000, 3_000)
    assert len(fitted.holdout_ids) == len(fitted.holdout_scores) == 3_000


def test_a_threshold_dependent_metric_gets_the_versions_own_threshold_and_its_metrics(labelled, settings):
    from inferloop.tasks.model.training import classification_metrics

    result = fit_model.fn(
        labelled, settings.dataset, settings.training, settings.scoring, "balanced_accuracy"
    )
    label_rate = positive_target(labelled, settings.dataset).mean()  # a few % of frauds
    assert (result.threshold.threshold, result.threshold.reason) == (pytest.approx(label_rate), "label rate")
    assert result.params["decision_threshold"] == result.threshold.threshold
    at_own = classification_metrics(result.holdout_target, result.holdout_scores, result.threshold.threshold)
    assert result.metrics == at_own  # the holdout metrics logged are the version's, at its threshold
    at_setting = classification_metrics(result.holdout_target, result.holdout_scores, 0.5)
    assert result.metrics["balanced_accuracy"] > at_setting["balanced_accuracy"]


def test_the_held_out_scores_are_the_validation_fits_and_the_model_is_refitted(labelled, fitted, settings):
    refitted = fitted
    validated = fit_model.fn(
        labelled,
        settings.dataset,
        settings.training.model_copy(update={"refit_on_full_window": False}),
        settings.scoring,
        "roc_auc",
    )
    assert refitted.refitted and not validated.refitted
    assert np.array_equal(refitted.holdout_scores, validated.holdout_scores)  # honest: never saw them
    held_out = prepare_features(
        labelled[labelled[settings.dataset.id_column].isin(refitted.holdout_ids)], settings.dataset
    )
    assert np.allclose(validated.model.predict_proba(held_out)[:, 1], validated.holdout_scores)
    assert not np.allclose(refitted.model.predict_proba(held_out)[:, 1], refitted.holdout_scores)


def test_small_partitions_hold_out_more_days_until_the_evidence_suffices(labelled, settings):
    spec = settings.dataset
    _, holdout = split_by_time(labelled, spec, holdout_days=1, min_holdout_rows=6_001)
    assert holdout["event_time"].dt.date.nunique() == 2  # capped at half the 5-day window
    _, holdout = split_by_time(labelled, spec, holdout_days=1, min_holdout_rows=3_001)
    assert holdout["event_time"].dt.date.nunique() == 2
    _, holdout = split_by_time(labelled, spec, holdout_days=1, min_holdout_rows=3_000)
    assert holdout["event_time"].dt.date.nunique() == 1


@pytest.mark.parametrize(
    ("rows", "min_holdout_rows", "held"),
    [
        ([48] * 7, 200, 3),  # Elec2's days: capped at half the window, 144 rows
        ([48] * 10, 200, 5),  # 240 rows
        ([500] * 6, 200, 1),
        ([10, 10, 1000, 10], 20, 2),  # the cap counts partitions, the need counts rows
    ],
)
def test_the_holdout_grows_by_partitions_until_it_holds_enough_rows(rows, min_holdout_rows, held):
    assert held_out_partitions(rows, 1, min_holdout_rows) == held


def test_a_window_of_small_partitions_needs_earlier_ones_to_hold_out_enough(settings):
    spec = settings.dataset
    day = pd.Timestamp("2026-01-01")
    frame = pd.DataFrame({"event_time": [day + pd.Timedelta(days=d) for d in range(7) for _ in range(48)]})
    training = settings.training.model_copy(
        update={"min_train_rows": 200, "train_window_rows": 0, "min_holdout_rows": 200}
    )
    # 7 days of 48 rows hold out at most 3 (144 rows); 10 days hold out 5 (240).
    assert earlier_partitions_needed(frame, spec, training) == 3
    big = training.model_copy(update={"min_train_rows": 1000})
    assert earlier_partitions_needed(frame, spec, big) == 14  # 21 days: 1,008 rows
    assert earlier_partitions_needed(frame, spec, training.model_copy(update={"min_holdout_rows": 100})) == 0
    # The rows a window widens to count like the minimum, but are only a target (fewer still trains).
    steady = training.model_copy(update={"train_window_rows": 1000})
    assert earlier_partitions_needed(frame, spec, steady) == 14


def test_an_unseen_category_scores_as_a_missing_one_and_nulls_still_score(labelled, fitted, settings):
    odd = pd.concat([labelled.head(1)] * 3, ignore_index=True)
    odd["merchant_category"] = ["never-seen", None, None]
    odd.loc[2, "amount"] = None
    scores = fitted.model.predict_proba(prepare_features(odd, settings.dataset))[:, 1]
    assert scores[0] == scores[1]  # both encode as missing, which the booster has a branch for
    assert np.isfinite(scores).all()  # a null numeric is scored, not NaN


def test_the_model_size_settings_reach_the_booster_and_its_logged_params(labelled, monkeypatch):
    from inferloop.core.settings import load_settings

    monkeypatch.setenv("INFERLOOP_MODEL_MAX_ITER", "6")
    monkeypatch.setenv("INFERLOOP_MODEL_MAX_LEAF_NODES", "4")
    settings = load_settings()
    result = fit_model.fn(labelled, settings.dataset, settings.training, settings.scoring, "roc_auc")
    booster = booster_of(result.model)
    assert (booster.max_iter, booster.max_leaf_nodes) == (6, 4)
    assert booster.n_iter_ <= 6
    assert max(predictor.nodes["is_leaf"].sum() for (predictor,) in booster._predictors) <= 4
    assert (result.params["max_iter"], result.params["max_leaf_nodes"]) == (6, 4)  # logged with the run
    assert result.params["leaf_nodes_choice"] == "4 leaves (no search: one size to try)"
    assert result.metrics["roc_auc"] > 0.6  # still a model: the promotion gate's floor


def test_single_class_window_is_refused(labelled, settings):
    one_class = labelled.assign(is_fraud=0)
    with pytest.raises(TrainingDataError, match="single class"):
        fit_model.fn(one_class, settings.dataset, settings.training, settings.scoring, "roc_auc")


def test_window_shorter_than_holdout_is_refused(labelled, settings):
    first_day = labelled[pd.to_datetime(labelled["event_time"]).dt.day == 1]
    with pytest.raises(TrainingDataError, match="holdout_days"):
        split_by_time(first_day, settings.dataset, holdout_days=1)


# ---------------------------------------------------------------- the capacity search

TOY = DatasetSpec(
    name="toy",
    id_column="id",
    time_column="event_time",
    label={"column": "target"},
    features={"x1": "numeric", "x2": "numeric", "x3": "numeric", "kind": "categorical"},
)


def toy_window(rows: int, label: str) -> pd.DataFrame:
    """A window of `rows` rows a minute apart whose label is a coarse, noisy rule ("noisy": one
    split with 30 % of labels flipped) or an intricate, exact one ("board": a 6x6 checkerboard)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(rows, 3))
    if label == "noisy":
        target = (x[:, 0] > 0.5) ^ (rng.uniform(size=rows) < 0.3)
    else:
        target = (np.floor(x[:, 0] * 6) + np.floor(x[:, 1] * 6)) % 2 == 1
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "event_time": pd.date_range("2026-01-01", periods=rows, freq="min"),
            "x1": x[:, 0],
            "x2": x[:, 1],
            "x3": x[:, 2],
            "kind": rng.choice(["a", "b"], rows),
            "target": target.astype(int),
        }
    )


def test_the_capacity_search_picks_small_trees_for_a_noisy_window_and_large_ones_for_an_intricate_one():
    noisy = chosen_capacity(toy_window(2_000, "noisy"), TOY)
    assert list(noisy.log_losses) == [4, 8, 16, 31]
    assert noisy.leaf_nodes <= 8  # 31-leaf trees fit the flipped labels
    assert noisy.log_losses[noisy.leaf_nodes] < noisy.log_losses[31]
    intricate = chosen_capacity(toy_window(10_000, "board"), TOY)
    assert intricate.leaf_nodes == 31  # 4 leaves cannot draw a checkerboard
    assert intricate.log_losses[31] < intricate.log_losses[4] / 2
    for choice in (noisy, intricate):
        assert choice.log_losses[choice.leaf_nodes] == min(choice.log_losses.values())


def test_the_capacity_is_chosen_once_on_the_training_days_and_kept_by_the_refit(
    labelled, fitted, settings, monkeypatch
):
    from inferloop.tasks.model import training

    spec = settings.dataset
    held_out = labelled[spec.id_column].isin(fitted.holdout_ids)
    assert held_out.any()
    label = labelled[spec.label.column]
    flipped = labelled.assign(**{spec.label.column: np.where(held_out, 1 - label, label)})
    searched = []
    search = training.chosen_capacity
    monkeypatch.setattr(
        training, "chosen_capacity", lambda frame, *a: searched.append(len(frame)) or search(frame, *a)
    )
    again = fit_model.fn(flipped, spec, settings.training, settings.scoring, "roc_auc")
    assert searched == [fitted.train_rows]  # once, on the training days: the refit keeps the size
    assert again.params["leaf_nodes_choice"] == fitted.params["leaf_nodes_choice"]  # the holdout is unseen
    assert "lowest log loss" in fitted.params["leaf_nodes_choice"]
    assert booster_of(fitted.model).max_leaf_nodes == fitted.params["max_leaf_nodes"]


def test_the_newest_rows_are_the_newest_by_time_not_by_position():
    window = toy_window(2_000, "noisy")
    window.loc[window.index[-400:], "target"] = 1  # the newest fifth: one class, no log loss to rank by
    shuffled = window.sample(frac=1, random_state=0)  # a lake's rows need not arrive in time order
    for frame in (window, shuffled):
        choice = chosen_capacity(frame, TOY)
        assert (choice.leaf_nodes, choice.log_losses) == (31, {})
        assert (
            choice.reason
            == "31 leaves (no search: the window's older or newest rows hold fewer than 10 of a class)"
        )


def test_a_window_with_a_handful_of_one_class_is_fitted_without_a_search():
    """The booster's early stopping keeps rows of both classes aside: a search on one or two
    positives would fail where the model itself fits."""
    from inferloop.tasks.model.training import fitted as fitted_pipeline

    window = toy_window(1_000, "noisy").assign(target=0)
    window.loc[window.index[[100, 900]], "target"] = 1  # one in the older rows, one in the newest
    assert chosen_capacity(window, TOY).log_losses == {}
    assert booster_of(fitted_pipeline(window, TOY)).max_leaf_nodes == 31
    assert booster_of(fitted_pipeline(toy_window(2_000, "noisy").head(12), TOY)).max_leaf_nodes == 31
