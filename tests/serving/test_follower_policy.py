"""The follower's degraded-model policy, with a stand-in registry (the endpoint tests run the real
one): the fallback is loaded once, not on every poll; a fallback that fails to load or is itself
breached leaves the champion scoring and says why; a hand-edited breach tag still reads as one."""

import pytest

from inferloop.core.registry import BREACH_TAG, ModelVersionRef, RegistryError, recorded_breach
from inferloop.serving import champion as champion_module
from inferloop.serving.champion import ChampionFollower

BREACH = "breach confirmed on 2026-03-14: performance"


class StandInRegistry:
    model_name = "fraud"

    def __init__(self):
        self.aliases = {
            "champion": ModelVersionRef("fraud", "5", "r5", "champion", None, BREACH),
            "previous_champion": ModelVersionRef("fraud", "4", "r4", "previous_champion"),
        }

    def find_alias(self, alias):
        if isinstance(self.aliases.get(alias), RegistryError):
            raise self.aliases[alias]
        return self.aliases.get(alias)


@pytest.fixture
def loads(monkeypatch) -> list:
    loaded = []

    def scoring_model(registry, ref):
        loaded.append(ref.version)
        if ref.version == "3":
            raise OSError("the compiled library is missing")
        return f"model v{ref.version}"

    monkeypatch.setattr(champion_module, "scoring_model", scoring_model)
    return loaded


def test_the_fallback_is_loaded_once_and_scores_while_the_breach_is_open(loads):
    registry, changes = StandInRegistry(), []
    follower = ChampionFollower(
        registry, "champion", 1, degraded_policy="fallback", on_degraded=changes.append
    )
    for _ in range(3):
        follower.check_once()
    assert loads == ["5", "4"]  # not reloaded on every poll
    assert follower.current.ref.version == "4" and "@previous_champion scores" in follower.current.degraded
    assert len(changes) == 1
    registry.aliases["champion"] = ModelVersionRef("fraud", "5", "r5", "champion")  # the breach closed
    follower.check_once()
    assert follower.current.ref.version == "5" and follower.current.degraded is None
    assert loads == ["5", "4"] and len(changes) == 2


@pytest.mark.parametrize(
    ("previous", "why"),
    [
        (ModelVersionRef("fraud", "3", "r3", "previous_champion"), "v3 failed to load"),
        (ModelVersionRef("fraud", "4", "r4", "previous_champion", None, BREACH), "v4 has an open breach too"),
        (None, "no @previous_champion"),
        (RegistryError("MLflow did not answer"), "could not be resolved: MLflow did not answer"),
    ],
)
def test_without_a_usable_fallback_the_champion_scores_and_says_why(loads, previous, why):
    registry = StandInRegistry()
    registry.aliases["previous_champion"] = previous
    follower = ChampionFollower(registry, "champion", 1, degraded_policy="fallback")
    follower.check_once()
    follower.check_once()
    assert follower.current.ref.version == "5" and follower.state().stale is False
    assert why in follower.current.degraded and "the champion scores" in follower.current.degraded
    assert loads.count("3") <= 1  # a version that failed is not retried on every poll


def test_a_breach_tag_edited_by_hand_is_still_an_open_breach():
    assert recorded_breach({}) is None and recorded_breach({BREACH_TAG: ""}) is None
    assert "set by hand: true" in recorded_breach({BREACH_TAG: "true"})
    assert recorded_breach({BREACH_TAG: '{"since": "2026-03-14", "reasons": ["drift"]}'}) == (
        "breach confirmed on 2026-03-14: drift"
    )
