"""The monitor flow's second look at a rejected challenger: compared with the champion again,
once, on labelled rows after everything it was fitted or compared on; promoted only if it wins."""

import json
from dataclasses import replace

import pytest
from mlflow import MlflowClient

from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.batch_inference import batch_inference
from inferloop.flows.monitor import monitor, second_look
from inferloop.flows.promote import promote
from inferloop.runtime.locks import global_lock
from inferloop.tasks.model.registry import find_alias
from inferloop.tasks.monitoring.retrain_policy import RETRAIN_LOCK, load_ledger
from inferloop.tasks.promotion.second_look import DECIDED_BY, TAG
from tests.flows.conftest import AFTER_BOTH, DAYS, FEED, aliases, register, write_feed
from tests.flows.test_promote import decision_tags


@pytest.fixture(autouse=True)
def comparison_alone(monkeypatch):
    """Each pool model's ROC AUC on the other's pattern is ~0.45: the floor (0.6 by default) is
    lowered so that the comparison decides, as it does between two fit models."""
    monkeypatch.setenv("INFERLOOP_MIN_ROC_AUC", "0.4")


def second_looks() -> list[str]:
    settings = load_settings()
    ledger = load_ledger(lake_storage(settings.lake), settings.dataset.name, DAYS[0])
    return [d.outcome for d in ledger if " second look, " in d.outcome]


def test_a_challenger_rejected_on_days_it_was_not_made_for_wins_its_second_look(pool, lake, feed):
    old = register(lake, pool.before, "champion")
    new = register(lake, pool.after, "challenger")
    # Rejected on old-pattern days (the champion's): the comparison alone decided.
    first = promote(start=DAYS[5], end=DAYS[7])
    assert first.verdict == "reject" and first.reason.startswith("beats_champion")
    batch_inference(partition_date=AFTER_BOTH[0], end_date=AFTER_BOTH[1])

    monitor(day=AFTER_BOTH[0], chart=False)  # no labelled row after the challenger's window yet
    assert second_looks() == [] and aliases(lake)["champion"] == old

    decision = monitor(day=AFTER_BOTH[1], chart=False)
    window = f"{AFTER_BOTH[0]}..{AFTER_BOTH[0]}"
    assert decision.action == "none"  # the new champion's own monitoring starts from here
    assert decision.reasons[0].startswith(f"second look at v{new} on 500 labelled rows of {window}: promote")
    assert aliases(lake) == {"champion": new, "previous_champion": old}
    recorded = decision_tags(lake, first.model_name, new)
    assert (recorded["verdict"], recorded["decided_by"], recorded["champion_before"]) == (
        "promote",
        DECIDED_BY,
        old,
    )
    assert recorded["evaluation"].endswith(window)
    look = json.loads(MlflowClient(lake).get_model_version(first.model_name, new).tags[TAG])
    assert (look["verdict"], look["start"], look["end"], look["rows"]) == (
        "promote",
        *window.split(".."),
        500,
    )
    assert second_looks() == [f"v{new} second look, promote: passed every gate"]


def test_a_challenger_that_loses_again_is_not_looked_at_a_third_time(pool, lake, feed):
    last = FEED.day(FEED.days)
    write_feed(replace(FEED, days=FEED.days + 1))  # one more day of the new pattern
    champion = register(lake, pool.after, "champion")
    worse = register(lake, pool.before, "challenger")
    assert promote(start=AFTER_BOTH[0], end=AFTER_BOTH[0]).verdict == "reject"
    batch_inference(partition_date=AFTER_BOTH[1], end_date=last)

    monitor(day=AFTER_BOTH[1], chart=False)  # the only labelled day after its window: compared on
    assert second_looks() == []
    monitor(day=last, chart=False)  # the rows that followed: its second look
    monitor(day=last, chart=False)  # a rerun of the day: the look is not taken again
    assert aliases(lake) == {"champion": champion, "challenger": worse}
    (outcome,) = second_looks()
    assert outcome.startswith(f"v{worse} second look, reject: beats_champion")
    name = load_settings().registry.model_name
    look = json.loads(MlflowClient(lake).get_model_version(name, worse).tags[TAG])
    assert (look["start"], look["end"]) == (AFTER_BOTH[1].isoformat(), AFTER_BOTH[1].isoformat())


def test_no_second_look_in_approve_mode_where_people_decide(pool, lake, feed, monkeypatch):
    monkeypatch.setenv("INFERLOOP_PROMOTION_MODE", "approve")
    register(lake, pool.before, "champion")
    challenger = register(lake, pool.after, "challenger")
    assert promote(start=DAYS[5], end=DAYS[7], mode="auto").verdict == "reject"
    batch_inference(partition_date=AFTER_BOTH[1])

    monitor(day=AFTER_BOTH[1], chart=False)
    assert second_looks() == [] and aliases(lake)["challenger"] == challenger


def test_a_look_waits_while_a_retrain_holds_the_lock_and_is_taken_after(pool, lake, feed):
    """A running retrain (the retrain lock held) would replace the challenger or the champion:
    the look is not taken, nor spent, that day; it is taken once the lock is free."""
    old = register(lake, pool.before, "champion")
    new = register(lake, pool.after, "challenger")
    assert promote(start=DAYS[5], end=DAYS[7]).verdict == "reject"
    settings = load_settings()
    storage, champion = lake_storage(settings.lake), find_alias(settings.registry, "champion")

    with global_lock(RETRAIN_LOCK):
        assert second_look(storage, settings, champion, AFTER_BOTH[1], None) is None
    assert second_looks() == [] and aliases(lake) == {"champion": old, "challenger": new}

    promoted = second_look(storage, settings, champion, AFTER_BOTH[1], None)
    assert promoted is not None and promoted.outcome == f"v{new} second look, promote: passed every gate"
    assert aliases(lake)["champion"] == new


def test_without_a_look_due_the_lock_is_not_asked_for(pool, lake, feed, capsys):
    """Most partitions have no look due: the monitor does not wait on a retrain's lock for none."""
    register(lake, pool.before, "champion")
    settings = load_settings()
    storage, champion = lake_storage(settings.lake), find_alias(settings.registry, "champion")

    with global_lock(RETRAIN_LOCK):
        assert second_look(storage, settings, champion, AFTER_BOTH[1], None) is None
    assert "waits" not in capsys.readouterr().out
