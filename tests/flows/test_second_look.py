"""The monitor flow's second look at a rejected challenger: compared with the champion again,
once, on the labelled rows after its window; promoted only if it wins there."""

import json

import pytest
from mlflow import MlflowClient

from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.batch_inference import batch_inference
from inferloop.flows.monitor import monitor
from inferloop.flows.promote import promote
from inferloop.tasks.monitoring.retrain_policy import load_ledger
from inferloop.tasks.promotion.second_look import DECIDED_BY, TAG
from tests.flows.conftest import AFTER_BOTH, DAYS, aliases, register
from tests.flows.test_promote import decision_tags

LOOKED_ON = AFTER_BOTH[1]  # labels known then: AFTER_BOTH[0], after both pool models' windows


def second_looks(storage, dataset: str) -> list[str]:
    return [d.outcome for d in load_ledger(storage, dataset, DAYS[0]) if " second look, " in d.outcome]


@pytest.fixture(autouse=True)
def comparison_alone(monkeypatch):
    """Each pool model's ROC AUC on the other's pattern is ~0.45: under the default floor (0.6) a
    rejection there would be for unfitness, which gets no second look."""
    monkeypatch.setenv("INFERLOOP_MIN_ROC_AUC", "0.4")


def test_a_challenger_rejected_on_days_it_was_not_made_for_wins_its_second_look(pool, lake, feed):
    old = register(lake, pool.before, "champion")
    new = register(lake, pool.after, "challenger")
    # Rejected on old-pattern days (the champion's): the comparison alone decided.
    first = promote(start=DAYS[5], end=DAYS[7])
    assert first.verdict == "reject" and first.reason.startswith("beats_champion")
    batch_inference(partition_date=LOOKED_ON)  # the day the monitor looks at

    decision = monitor(day=LOOKED_ON, chart=False)
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
    settings = load_settings()
    storage = lake_storage(settings.lake)
    assert second_looks(storage, settings.dataset.name) == [f"v{new} second look, promote: passed every gate"]


def test_a_challenger_that_loses_again_is_not_looked_at_a_third_time(pool, lake, feed):
    champion = register(lake, pool.after, "champion")
    worse = register(lake, pool.before, "challenger")
    assert promote(start=AFTER_BOTH[0], end=AFTER_BOTH[1]).verdict == "reject"
    batch_inference(partition_date=LOOKED_ON)

    monitor(day=LOOKED_ON, chart=False)
    monitor(day=LOOKED_ON, chart=False)  # a rerun of the day: the look is not taken again
    assert aliases(lake) == {"champion": champion, "challenger": worse}
    settings = load_settings()
    (outcome,) = second_looks(lake_storage(settings.lake), settings.dataset.name)
    assert outcome.startswith(f"v{worse} second look, reject: beats_champion")
