"""The retrain policy (tasks/retrain_policy.py) on hand-built monitoring reports: no I/O."""

import itertools
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from inferloop.core.settings import load_settings
from inferloop.tasks.monitoring.daily_report import MonitoringReport
from inferloop.tasks.monitoring.performance import PerformanceSnapshot
from inferloop.tasks.monitoring.retrain_policy import (
    RetrainDecision,
    breach_open,
    decide_retrain,
    degradation_onset,
    known_fields,
)

START = date(2026, 3, 1)
DRIFT = "drift: amount PSI 0.412 > 0.2"


def day(n: int) -> date:
    return START + timedelta(days=n)


def report(
    n: int,
    breached: bool = True,
    version: str = "3",
    gate_refused: bool = False,
    day_metric: float | None = None,
    validation: float | None = 0.90,
) -> MonitoringReport:
    """Day `n`'s report; `day_metric` is the champion's metric on the event day (n - 1)."""
    event_day = day(n - 1).isoformat()
    return MonitoringReport(
        dataset="toy",
        model_name="toy-classifier",
        model_version=version,
        day=day(n).isoformat(),
        gate_refused=gate_refused,
        breaches=[DRIFT] if breached else [],
        validation_metric=validation,
        day_performance=None
        if day_metric is None
        else PerformanceSnapshot(version, event_day, event_day, 500, {"roc_auc": day_metric}),
    )


def retrain_on(n: int) -> RetrainDecision:
    return RetrainDecision(day(n).isoformat(), "retrain", [DRIFT], champion_version="3", outcome="v4 promote")


POLICY = load_settings(
    confirm_days=2, retrain_cooldown_days=3, max_retrains_per_day=1, performance_trigger="drop"
)


def test_no_breach_today_means_no_retrain():
    decision = decide_retrain(
        [report(0), report(1, breached=False)], [], POLICY.retrain, POLICY.monitoring, day(1)
    )
    assert decision.action == "none" and decision.reasons == []
    assert decision.champion_version == "3"


def test_no_report_for_the_day_means_no_retrain():
    decision = decide_retrain([report(0), report(1)], [], POLICY.retrain, POLICY.monitoring, day(2))
    assert decision.action == "none" and decision.champion_version == ""


def test_a_breach_shorter_than_confirm_days_waits_to_confirm():
    settings = load_settings(confirm_days=3)
    decision = decide_retrain(
        [report(0, breached=False), report(1), report(2)], [], settings.retrain, settings.monitoring, day(2)
    )
    assert decision.action == "none"
    assert decision.reasons == ["breach on 2 of 3 consecutive days: waiting to confirm"]


def test_breaches_on_non_consecutive_days_are_not_confirmed():
    # Breached on days 0 and 2; day 1 was fine (or, second case, never monitored at all).
    for history in ([report(0), report(1, breached=False), report(2)], [report(0), report(2)]):
        decision = decide_retrain(history, [], POLICY.retrain, POLICY.monitoring, day(2))
        assert decision.action == "none"
        assert "waiting to confirm" in decision.reasons[0]


def test_a_confirmed_breach_retrains_with_its_reasons():
    decision = decide_retrain(
        [report(0, breached=False), report(1), report(2)], [], POLICY.retrain, POLICY.monitoring, day(2)
    )
    assert decision.action == "retrain"
    assert decision.reasons == [DRIFT]
    assert decision.day == day(2).isoformat() and decision.champion_version == "3"
    assert decision.suppressed_because == ""


def test_a_gate_refusal_on_a_confirmation_day_suppresses_naming_the_day():
    history = [report(1, gate_refused=True), report(2)]
    decision = decide_retrain(history, [], POLICY.retrain, POLICY.monitoring, day(2))
    assert decision.action == "suppressed"
    assert day(1).isoformat() in decision.suppressed_because
    assert day(2).isoformat() not in decision.suppressed_because
    assert "data gate refused" in decision.suppressed_because
    assert decision.reasons == [DRIFT]  # what would have triggered it stays on the record


def test_a_gate_refusal_before_the_confirmation_days_does_not_suppress():
    history = [report(0, gate_refused=True), report(1), report(2)]
    assert decide_retrain(history, [], POLICY.retrain, POLICY.monitoring, day(2)).action == "retrain"


def test_cooldown_suppresses_and_names_the_next_allowed_day():
    history = [report(4), report(5)]
    decision = decide_retrain(history, [retrain_on(3)], POLICY.retrain, POLICY.monitoring, day(5))
    assert decision.action == "suppressed"
    assert f"a retrain on {day(3)}" in decision.suppressed_because
    assert f"next allowed on {day(6)}" in decision.suppressed_because
    # ... and on that day the same confirmed breach does retrain.
    later = decide_retrain([*history, report(6)], [retrain_on(3)], POLICY.retrain, POLICY.monitoring, day(6))
    assert later.action == "retrain"


def test_a_rejected_challenger_is_retried_once_half_of_what_it_lost_on_is_new():
    # Its challenger lost on 9 held-out partitions: a retrain within 5 partitions would hold
    # out mostly the same ones, against the same champion; the cooldown (3) alone would allow day 6.
    rejected = RetrainDecision(
        day(3).isoformat(),
        "retrain",
        [DRIFT],
        champion_version="3",
        outcome="v4 reject",
        compared_partitions=9,
    )
    history = [report(n) for n in range(4, 10)]
    verdicts = {
        n: decide_retrain(history[: n - 3], [rejected], POLICY.retrain, POLICY.monitoring, day(n))
        for n in range(6, 10)
    }
    assert [verdicts[n].action for n in range(6, 10)] == ["suppressed", "suppressed", "retrain", "retrain"]
    assert verdicts[6].suppressed_because == (
        f"the challenger of {day(3)} was rejected on 9 partitions; a retrain before {day(8)} would be "
        "compared on mostly the same ones (next allowed then; a holdout holds "
        "INFERLOOP_MIN_HOLDOUT_ROWS rows)"
    )
    # A retrain since that produced no model leaves the rejection's wait standing.
    failed = RetrainDecision(
        day(6).isoformat(), "retrain", [DRIFT], champion_version="3", outcome="not retrained: one class"
    )
    assert (
        decide_retrain(history[:4], [rejected, failed], POLICY.retrain, POLICY.monitoring, day(7)).action
        == "suppressed"
    )
    # Inside the cooldown, the cooldown is the reason given (the familiar one, with its knob).
    within = decide_retrain(history[:2], [rejected], POLICY.retrain, POLICY.monitoring, day(5))
    assert within.suppressed_because.startswith("cooldown: ")
    # A promoted challenger, a short holdout, or another champion since: the cooldown decides.
    for other in (
        replace(rejected, outcome="v4 promote", compared_partitions=0),
        replace(rejected, compared_partitions=2),
        replace(rejected, champion_version="2"),
    ):
        assert (
            decide_retrain(history[:3], [other], POLICY.retrain, POLICY.monitoring, day(6)).action
            == "retrain"
        )


def test_suppressed_decisions_do_not_start_a_cooldown():
    ledger = [RetrainDecision(day(4).isoformat(), "suppressed", [DRIFT], "cooldown")]
    assert (
        decide_retrain([report(4), report(5)], ledger, POLICY.retrain, POLICY.monitoring, day(5)).action
        == "retrain"
    )


def test_a_retrain_killed_before_it_finished_does_not_count_for_the_guard():
    killed = RetrainDecision(day(4).isoformat(), "retrain", [DRIFT], champion_version="3")  # no outcome
    decision = decide_retrain([report(4), report(5)], [killed], POLICY.retrain, POLICY.monitoring, day(5))
    assert decision.action == "retrain"


def test_the_daily_cap_suppresses_a_second_retrain_on_the_same_day():
    no_cooldown = load_settings(confirm_days=2, retrain_cooldown_days=0, max_retrains_per_day=1)
    history = [report(1), report(2)]
    decision = decide_retrain(history, [retrain_on(2)], no_cooldown.retrain, no_cooldown.monitoring, day(2))
    assert decision.action == "suppressed"
    assert f"1 retrain(s) already on {day(2)}" in decision.suppressed_because
    two_a_day = load_settings(confirm_days=2, retrain_cooldown_days=0, max_retrains_per_day=2)
    assert (
        decide_retrain(history, [retrain_on(2)], two_a_day.retrain, two_a_day.monitoring, day(2)).action
        == "retrain"
    )


def test_reports_of_another_champion_version_do_not_confirm():
    # Version 4 became champion on day 2: day 1's breach was the old model's.
    history = [report(1, version="3"), report(2, version="4")]
    decision = decide_retrain(history, [], POLICY.retrain, POLICY.monitoring, day(2))
    assert decision.action == "none"
    assert decision.champion_version == "4"
    assert decision.reasons == ["breach on 1 of 2 consecutive days: waiting to confirm"]


def test_degradation_onset_is_the_first_event_day_of_the_latest_run_of_breached_days():
    # validation 0.90, tolerated drop 0.05: below 0.85 is a breach. Days 1 and 2 breach, day 3
    # recovers, days 4-6 breach: the latest run starts on day 4, whose event day is day 3.
    metrics = {1: 0.70, 2: 0.72, 3: 0.88, 4: 0.80, 5: 0.74, 6: 0.75}
    history = [report(n, day_metric=m) for n, m in metrics.items()]
    assert degradation_onset(history, POLICY.monitoring) == day(3).isoformat()
    # The retrain decision carries it, so the retrain flow trains on what came after.
    assert (
        decide_retrain(history, [], POLICY.retrain, POLICY.monitoring, day(6)).train_from
        == day(3).isoformat()
    )


def test_degradation_onset_is_empty_when_the_latest_day_is_not_degraded():
    breached_then_fine = [report(1, day_metric=0.70), report(2, day_metric=0.88)]
    assert degradation_onset(breached_then_fine, POLICY.monitoring) == ""
    drift_only = [report(1), report(2)]  # no labelled day metric at all
    assert degradation_onset(drift_only, POLICY.monitoring) == ""
    no_validation = [report(1, day_metric=0.70, validation=None)]
    assert degradation_onset(no_validation, POLICY.monitoring) == ""


def test_a_day_without_labels_breaks_the_run():
    history = [report(1, day_metric=0.70), report(2), report(3, day_metric=0.70)]
    # Only day 3 is in the latest run; its event day is day 2.
    assert degradation_onset(history, POLICY.monitoring) == day(2).isoformat()


@hsettings(max_examples=300, deadline=None)
@given(
    breached=st.lists(st.booleans(), min_size=1, max_size=40),
    confirm_days=st.integers(1, 3),
    cooldown=st.integers(0, 6),
    cap=st.integers(1, 3),
    calls_per_day=st.integers(1, 3),
)
def test_simulated_days_never_retrain_inside_the_cooldown_or_above_the_daily_cap(
    breached, confirm_days, cooldown, cap, calls_per_day
):
    """Day by day, as the monitor and the event-started retrain flow (up to `calls_per_day`
    decisions a day) would run it, each verdict recorded in the ledger."""
    settings = load_settings(
        confirm_days=confirm_days, retrain_cooldown_days=cooldown, max_retrains_per_day=cap
    )
    history, ledger = [], []
    for n, flag in enumerate(breached):
        history.append(report(n, breached=flag))
        for _ in range(calls_per_day):
            decision = decide_retrain(history, ledger, settings.retrain, settings.monitoring, day(n))
            if decision.action != "none":
                decision.outcome = "v2 promote" if decision.action == "retrain" else ""
                ledger.append(decision)
    retrain_days = [date.fromisoformat(d.day) for d in ledger if d.action == "retrain"]
    assert max(Counter(retrain_days).values(), default=0) <= cap
    distinct = sorted(set(retrain_days))
    assert all((b - a).days >= cooldown for a, b in itertools.pairwise(distinct))
    for retrained in retrain_days:  # only on a confirmed breach
        n = (retrained - START).days
        assert n + 1 >= confirm_days and all(breached[n - confirm_days + 1 : n + 1])


@hsettings(max_examples=200, deadline=None)
@given(breached=st.lists(st.booleans(), min_size=1, max_size=40), cooldown=st.integers(0, 6))
def test_a_confirmed_breach_retrains_unless_the_guard_names_why_not(breached, cooldown):
    settings = load_settings(confirm_days=2, retrain_cooldown_days=cooldown, max_retrains_per_day=1)
    history, ledger = [], []
    for n, flag in enumerate(breached):
        history.append(report(n, breached=flag))
        decision = decide_retrain(history, ledger, settings.retrain, settings.monitoring, day(n))
        confirmed = n >= 1 and breached[n - 1] and flag
        assert (decision.action != "none") == confirmed
        if decision.action == "suppressed":
            assert "cooldown" in decision.suppressed_because
        if decision.action != "none":
            ledger.append(decision)


def test_cooldown_also_holds_for_a_backfilled_earlier_day():
    """Re-monitoring a past day must not slip a retrain in just before a recorded one."""
    decision = decide_retrain(
        [report(4), report(5)], [retrain_on(6)], POLICY.retrain, POLICY.monitoring, day(5)
    )
    assert decision.action == "suppressed" and f"a retrain on {day(6)}" in decision.suppressed_because


def test_a_detected_change_with_enough_rows_after_it_is_where_the_retrain_starts():
    from inferloop.tasks.monitoring.change_detection import ChangeVerdict

    change = load_settings(confirm_days=1, performance_trigger="change")
    latest = report(2)
    latest.changes = [
        ChangeVerdict("error on positives", 900, True, 0.2, 0.5, day(-3).isoformat(), rows_after=600),
        ChangeVerdict("error on negatives", 900, True, 0.1, 0.3, day(-1).isoformat(), rows_after=150),
        ChangeVerdict("error", 900, False),
    ]
    decide = decide_retrain
    # The latest change with at least 400 rows after it; too few after any change: the whole window.
    assert (
        decide([latest], [], change.retrain, change.monitoring, day(2), 400).train_from == day(-3).isoformat()
    )
    assert (
        decide([latest], [], change.retrain, change.monitoring, day(2), 100).train_from == day(-1).isoformat()
    )
    assert decide([latest], [], change.retrain, change.monitoring, day(2), 1_000).train_from == ""


def test_the_breach_opens_when_confirmed_closes_on_a_clean_day_and_holds_while_confirming():
    assert breach_open(RetrainDecision("2026-01-09", "retrain", ["performance: roc_auc"])) is True
    assert breach_open(RetrainDecision("2026-01-09", "suppressed", ["drift"], "cooldown")) is True
    assert breach_open(RetrainDecision("2026-01-09", "none")) is False
    confirming = RetrainDecision(
        "2026-01-09", "none", ["breach on 1 of 2 consecutive days: waiting to confirm"]
    )
    assert breach_open(confirming) is None


def test_a_ledger_entry_with_a_field_this_version_does_not_know_still_reads():
    decision = retrain_on(3)
    recorded = {**decision.to_dict(), "added_by_a_later_version": 1}
    assert RetrainDecision(**known_fields(recorded)) == decision
