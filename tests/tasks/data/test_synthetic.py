import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day


def window(config: GeneratorConfig, days: range) -> pd.DataFrame:
    frames = []
    for index in days:
        features, labels = generate_day(config, index)
        frames.append(features.merge(labels[["transaction_id", "is_fraud"]], on="transaction_id"))
    return pd.concat(frames, ignore_index=True)


def test_generation_is_deterministic_per_day():
    config = GeneratorConfig(scenario="concept_drift", rows_per_day=500)
    first, first_labels = generate_day(config, 5)
    again, again_labels = generate_day(config, 5)
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first_labels, again_labels)
    other_seed, _ = generate_day(GeneratorConfig(rows_per_day=500, seed=8), 5)
    assert not first["amount"].equals(other_seed["amount"])


def test_days_have_unique_ids_and_timestamps_inside_the_day():
    config = GeneratorConfig(rows_per_day=1_000)
    frame = pd.concat([generate_day(config, i)[0] for i in range(3)])
    assert frame["transaction_id"].is_unique
    for index in range(3):
        features, _ = generate_day(config, index)
        assert (features["event_time"].dt.date == config.day(index)).all()


def test_stable_scenario_does_not_drift():
    config = GeneratorConfig(scenario="stable", days=14, rows_per_day=4_000)
    before, after = window(config, range(0, 7)), window(config, range(7, 14))
    assert ks_2samp(before["amount"], after["amount"]).statistic < 0.03
    assert abs(before["is_fraud"].mean() - after["is_fraud"].mean()) < 0.01


def test_covariate_drift_shifts_amount_and_nothing_else():
    config = GeneratorConfig(scenario="covariate_drift", days=14, rows_per_day=4_000)
    before, after = window(config, range(0, 7)), window(config, range(7, 14))
    assert ks_2samp(before["amount"], after["amount"]).statistic > 0.25
    for column in ("amount_to_avg_ratio", "distance_from_home_km", "account_age_days"):
        assert ks_2samp(before[column], after[column]).statistic < 0.03


def test_concept_drift_changes_the_label_relationship_not_the_features():
    from sklearn.metrics import roc_auc_score

    from inferloop.core.settings import load_settings
    from inferloop.tasks.data.feeds import prepare_features
    from inferloop.tasks.model.training import build_pipeline

    spec = load_settings().dataset
    config = GeneratorConfig(scenario="concept_drift", days=14, rows_per_day=4_000)
    before, after = window(config, range(0, 6)), window(config, range(7, 14))
    assert ks_2samp(before["amount"], after["amount"]).statistic < 0.03
    model = build_pipeline(spec).fit(prepare_features(before, spec), before["is_fraud"])
    held_out_before = window(config, range(6, 7))
    auc_before = roc_auc_score(
        held_out_before["is_fraud"], model.predict_proba(prepare_features(held_out_before, spec))[:, 1]
    )
    auc_after = roc_auc_score(after["is_fraud"], model.predict_proba(prepare_features(after, spec))[:, 1])
    assert auc_before > 0.8
    assert auc_after < auc_before - 0.25


def test_quality_faults_appear_only_on_fault_days():
    config = GeneratorConfig(scenario="quality_faults", days=8, rows_per_day=5_000)
    assert config.row_fault_days == (3,) and config.rename_days == (5,)
    faulty, _ = generate_day(config, 3)
    assert faulty["distance_from_home_km"].isna().mean() == pytest.approx(0.02, abs=0.01)
    assert (faulty["amount"] < 0).mean() == pytest.approx(0.01, abs=0.005)
    assert (faulty["merchant_category"] == "crypto_atm_unknown").sum() > 0
    renamed, _ = generate_day(config, 5)
    assert "amount" not in renamed.columns and "amt" in renamed.columns
    clean, _ = generate_day(config, 4)
    assert clean["distance_from_home_km"].notna().all() and (clean["amount"] > 0).all()


def test_label_rate_is_realistic():
    frame = window(GeneratorConfig(rows_per_day=10_000), range(0, 3))
    assert 0.02 < frame["is_fraud"].mean() < 0.08
    assert np.isfinite(frame.select_dtypes("number")).all().all()


def test_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="Unknown scenario"):
        GeneratorConfig(scenario="chaos")
