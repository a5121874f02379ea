"""What a model carries besides its weights (tasks/model/evaluation.py): the reference profile
monitoring compares live data to, and the evaluation plots."""

import numpy as np
import pandas as pd
import pytest

from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day
from inferloop.tasks.model.evaluation import (
    PROFILE_BINS,
    UNSEEN,
    categorical_profile,
    evaluation_figures,
    numeric_profile,
    reference_profile,
)


def test_numeric_bins_are_quantiles_open_on_both_sides():
    values = pd.Series(np.arange(1_000, dtype=float))
    profile = numeric_profile(values)
    edges = profile["bin_edges"]
    assert edges[0] == -np.inf and edges[-1] == np.inf
    assert len(profile["frequencies"]) == len(edges) - 1 == PROFILE_BINS + 2
    assert edges[1:-1] == pytest.approx(np.quantile(values, np.linspace(0, 1, PROFILE_BINS + 1)))
    assert sum(profile["frequencies"]) == pytest.approx(1.0)
    # Deciles: a tenth of the rows per inner bin; nothing below the minimum.
    assert profile["frequencies"][0] == 0.0
    assert profile["frequencies"][1:-2] == pytest.approx([0.1] * (PROFILE_BINS - 1))


def test_a_flag_keeps_two_bins_and_nulls_and_infinities_are_counted_apart():
    flag = pd.Series([0.0] * 70 + [1.0] * 20 + [None] * 5 + [np.inf] * 5)
    profile = numeric_profile(flag)
    assert profile["bin_edges"] == [-np.inf, 0.0, 1.0, np.inf]
    assert profile["frequencies"] == pytest.approx([0.0, 70 / 90, 20 / 90])
    assert profile["null_share"] == pytest.approx(0.10)


def test_an_all_null_column_has_an_empty_profile_not_an_error():
    profile = numeric_profile(pd.Series([None, None], dtype=float))
    assert profile["bin_edges"] == [-np.inf, np.inf] and profile["sample"] == []
    assert profile["null_share"] == 1.0


def test_categories_are_shares_of_the_present_values():
    profile = categorical_profile(pd.Series(["pos", "pos", "online", None]))
    assert profile["frequencies"] == {"pos": pytest.approx(2 / 3), "online": pytest.approx(1 / 3)}
    assert profile["null_share"] == 0.25 and profile["unseen_bucket"] == UNSEEN


def test_the_reference_profile_covers_every_feature_and_the_scores(settings):
    spec = settings.dataset
    frame = generate_day(GeneratorConfig(rows_per_day=300), 0)[0]
    scores = np.linspace(0, 1, len(frame))
    profile = reference_profile(frame, scores, spec)
    assert (profile["dataset"], profile["rows"]) == (spec.name, 300)
    assert set(profile["features"]) == set(spec.feature_columns)
    assert {profile["features"][c]["kind"] for c in spec.categorical_features} == {"categorical"}
    assert {profile["features"][c]["kind"] for c in spec.numeric_features} == {"numeric"}
    assert profile["prediction"] == numeric_profile(pd.Series(scores))


def test_the_evaluation_plots_are_the_three_named_figures():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, 200)
    scores = np.clip(target * 0.6 + rng.random(200) * 0.5, 0, 1)
    figures = evaluation_figures(target, scores, threshold=0.5)
    assert set(figures) == {"roc_curve.png", "confusion_matrix.png", "calibration.png"}
    titles = {name: figure.axes[0].get_title() for name, figure in figures.items()}
    assert titles["confusion_matrix.png"] == "Confusion matrix at threshold 0.5"
    assert all(tuple(f.get_size_inches()) == (5, 4) for f in figures.values())
