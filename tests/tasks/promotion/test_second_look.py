"""Which rejected challengers get a second look: those rejected by checks on their compared rows
alone, once."""

import json

import pytest

from inferloop.tasks.promotion.second_look import TAG, awaits_second_look


def rejected(failed_checks: str, **more: str) -> dict[str, str]:
    return {
        "inferloop.decision.verdict": "reject",
        "inferloop.decision.failed_checks": failed_checks,
        **more,
    }


@pytest.mark.parametrize(
    "failed_checks",
    [
        "beats_champion",
        "enough_evidence",
        "enough_evidence,beats_champion",
        "clearly_better_after_failures",
        "min_roc_auc",  # on held-out days hard for every model: the floor is checked again on new rows
        "min_roc_auc,beats_champion",
    ],
)
def test_a_challenger_rejected_by_checks_on_its_compared_rows_awaits_its_second_look(failed_checks):
    assert awaits_second_look(rejected(failed_checks))


@pytest.mark.parametrize(
    ("tags", "why"),
    [
        (rejected("beats_champion,data_gate"), "trained on data that was not gated"),
        (rejected("signature,beats_champion"), "does not accept the champion's inputs"),
        (rejected(""), "rejected by a person, or by a champion that moved: every gate had passed"),
        ({"inferloop.decision.verdict": "reject"}, "decided before failed checks were recorded"),
        ({"inferloop.decision.verdict": "promote", "inferloop.decision.failed_checks": ""}, "promoted"),
        ({}, "never decided on"),
        (rejected("beats_champion", **{TAG: json.dumps({"verdict": "reject"})}), "already looked at"),
    ],
)
def test_no_second_look_for_other_versions(tags, why):
    assert not awaits_second_look(tags), why
