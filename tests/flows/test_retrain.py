"""The retrain flow: under the retrain lock, re-check the verdict and the storm guard, record the
decision in the ledger before training, train on the recent labelled days and let promotion decide;
the outcome is recorded on the same decision."""

from datetime import date, timedelta

import pytest
from mlflow import MlflowClient

from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.retrain import retrain, training_start
from inferloop.tasks.monitoring.retrain_policy import RetrainDecision, load_ledger, record
from tests.flows.conftest import DAYS, aliases, register


def ledger(day: date) -> list[RetrainDecision]:
    settings = load_settings()
    return load_ledger(lake_storage(settings.lake), settings.dataset.name, day - timedelta(days=7))


def test_without_a_confirmed_breach_nothing_is_trained_or_recorded(pool, lake, feed):
    register(lake, pool.before, "champion")
    decision = retrain(day=DAYS[10])
    assert (decision.action, decision.reasons) == ("none", [])
    assert ledger(DAYS[10]) == []
    assert len(MlflowClient(lake).search_model_versions(f"name='{load_settings().registry.model_name}'")) == 1


def test_without_a_champion_the_monitor_keeps_training_candidates_every_cooldown_until_one_clears(
    lake, feed, monkeypatch
):
    from inferloop.flows.monitor import monitor
    from inferloop.flows.retrain import NO_CHAMPION_YET

    monkeypatch.setenv("INFERLOOP_RETRAIN_COOLDOWN_DAYS", "2")
    monkeypatch.setenv("INFERLOOP_MIN_ROC_AUC", "0.999")
    missed = monitor(day=DAYS[8], chart=False)
    assert (missed.action, missed.reasons) == ("retrain", [NO_CHAMPION_YET])
    assert "not promoted, still waiting for a first champion: min_roc_auc" in missed.outcome
    assert monitor(day=DAYS[9], chart=False).action == "suppressed"  # the cooldown holds
    monkeypatch.delenv("INFERLOOP_MIN_ROC_AUC")
    cleared = monitor(day=DAYS[10], chart=False)
    assert cleared.outcome == "v2 became the first @champion"
    assert aliases(lake)["champion"] == "2"


def test_a_forced_retrain_over_the_daily_cap_is_suppressed_and_recorded(lake, feed):
    settings = load_settings()
    earlier = RetrainDecision(DAYS[10].isoformat(), "retrain", ["drift"], outcome="v2 promote: ...")
    record(lake_storage(settings.lake), settings.dataset.name, earlier)

    decision = retrain(day=DAYS[10], force=True)
    assert (decision.action, decision.reasons) == ("suppressed", ["forced by a person"])
    assert "INFERLOOP_MAX_RETRAINS_PER_DAY" in decision.suppressed_because
    assert [(d.action, d.decided_at) for d in ledger(DAYS[10])] == [
        ("retrain", earlier.decided_at),
        ("suppressed", decision.decided_at),
    ]
    assert MlflowClient(lake).search_model_versions(f"name='{settings.registry.model_name}'") == []


def test_a_forced_retrain_trains_on_recent_days_and_promotion_decides(pool, lake, feed):
    old = register(lake, pool.before, "champion")
    day = DAYS[15]
    decision = retrain(day=day, force=True)

    assert decision.action == "retrain" and decision.reasons == ["forced by a person"]
    new = str(int(old) + 1)
    assert decision.outcome.startswith(f"v{new} promote:"), decision.outcome
    assert aliases(lake) == {"champion": new, "previous_champion": old}
    (recorded,) = ledger(day)  # one decision, updated in place with its outcome
    assert (recorded.action, recorded.outcome) == ("retrain", decision.outcome)
    # Trained on the last train_window_days labelled days known on `day` (labels come a day late).
    settings = load_settings()
    client = MlflowClient(lake)
    params = client.get_run(client.get_model_version(settings.registry.model_name, new).run_id).data.params
    end = day - timedelta(days=settings.dataset.label.delay_days)
    assert (params["window_start"], params["window_end"]) == (
        str(end - timedelta(days=settings.training.train_window_days - 1)),
        str(end),
    )


@pytest.mark.parametrize(
    ("onset", "expected"),
    [
        ("", date(2026, 1, 4)),  # no onset (drift alone): the whole window
        ("2026-01-07", date(2026, 1, 7)),  # data before a concept change teaches the old concept
        ("2026-01-10", date(2026, 1, 9)),  # never fewer than the held-out days plus one to fit on
    ],
)
def test_training_starts_at_the_onset_within_the_window(onset, expected):
    settings = load_settings(train_window_days=7, holdout_days=1)
    decision = RetrainDecision("2026-01-11", "retrain", train_from=onset)
    assert training_start(decision, settings.training, end=date(2026, 1, 10)) == expected


def test_a_rejected_challenger_is_not_retried_on_mostly_the_same_held_out_partitions(
    pool, lake, feed, monkeypatch
):
    register(lake, pool.before, "champion")
    monkeypatch.setenv("INFERLOOP_RETRAIN_COOLDOWN_DAYS", "0")
    monkeypatch.setenv("INFERLOOP_MIN_IMPROVEMENT", "0.9")  # no challenger can win
    monkeypatch.setenv("INFERLOOP_MIN_HOLDOUT_ROWS", "1500")  # 3 of these partitions
    rejected = retrain(day=DAYS[15], force=True)
    assert " reject: " in rejected.outcome
    settings = load_settings()
    client = MlflowClient(lake)
    version = rejected.outcome.split()[0].removeprefix("v")
    params = client.get_run(
        client.get_model_version(settings.registry.model_name, version).run_id
    ).data.params
    held_out = (
        date.fromisoformat(params["window_end"]) - date.fromisoformat(params["holdout_start"])
    ).days + 1
    assert ledger(DAYS[15])[0].compared_partitions == rejected.compared_partitions == held_out
    assert held_out == 3  # a wait of 2 partitions, beyond the (zero) cooldown
    again = retrain(day=DAYS[15] + timedelta(days=1), force=True)
    assert (
        again.action == "suppressed"
        and "would be compared on mostly the same ones" in again.suppressed_because
    )
