"""Which rejected challengers get a second look: those rejected by checks on their compared rows
alone, against today's champion, once; and where the rows they were compared on end."""

import json
from datetime import date, datetime

import pytest

from inferloop.tasks.promotion.second_look import TAG, awaits_second_look, compared_until

CHAMPION = "3"


def rejected(failed_checks: str, **more: str) -> dict[str, str]:
    return {
        "inferloop.decision.verdict": "reject",
        "inferloop.decision.failed_checks": failed_checks,
        "inferloop.decision.champion_before": CHAMPION,
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
    assert awaits_second_look(rejected(failed_checks), CHAMPION)


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
        (
            rejected("beats_champion", **{"inferloop.decision.champion_before": "2"}),
            "rejected against a champion a person or a rollback has since replaced",
        ),
    ],
)
def test_no_second_look_for_other_versions(tags, why):
    assert not awaits_second_look(tags, CHAMPION), why


@pytest.mark.parametrize(
    ("evaluation", "until"),
    [
        ("held-out days: 2026-01-10..2026-01-14", date(2026, 1, 14)),
        ("the requested window: 2026-01-15..2026-01-16", date(2026, 1, 16)),
        ("held-out days: 2010-03-01T05:00:00..2010-03-02T17:00:00", datetime(2010, 3, 2, 17)),
        ("labelled days after the challenger's training window", None),  # nothing was compared
        ("", None),
    ],
)
def test_the_rows_a_decision_compared_on_end_where_its_evaluation_says(evaluation, until):
    assert compared_until(evaluation) == until
