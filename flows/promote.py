"""Move `@champion` deliberately: promote a challenger that beats it, or roll back."""

from typing import Any

from prefect import flow
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from inferloop.core.periods import PartitionKey
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.runtime.alert_events import (
    PROMOTION_AWAITING_APPROVAL,
    PROMOTION_MADE,
    PROMOTION_REFUSED,
    PROMOTION_ROLLED_BACK,
    emit_alert,
)
from inferloop.tasks.data.feeds import latest_labelled_day
from inferloop.tasks.gate.partition_gate import gate_training_window
from inferloop.tasks.model.registry import find_alias, load_holdout_predictions, resolve_alias
from inferloop.tasks.promotion.decision import (
    HELD_OUT_DAYS,
    PromotionDecision,
    UnsafePromotionError,
    challenger_decision,
    get_version,
    manual_decision,
    no_unseen_rows_decision,
    promotion_window,
    rollback_target,
)
from inferloop.tasks.promotion.record import record_decision
from inferloop.tasks.reports import promotion_markdown, publish_promotion_report


class Approval(RunInput):
    approve: bool = False
    approver: str = ""
    comment: str = ""


def request_approval(decision: PromotionDecision, timeout_seconds: int) -> PromotionDecision:
    """Pause until a person approves or rejects in the Prefect UI; record who decided."""
    answer = pause_flow_run(
        wait_for_input=Approval.with_initial_data(description=promotion_markdown(decision)),
        timeout=timeout_seconds,
    )
    who = answer.approver or "unnamed approver"
    decision.decided_by = f"{'approved' if answer.approve else 'rejected'} by {who} in the Prefect UI"
    if not answer.approve:
        decision.verdict = "reject"
        decision.reason = f"rejected by {who}" + (f": {answer.comment}" if answer.comment else "")
    return decision


def refuse_if_unsafe(decision: PromotionDecision) -> None:
    """A person's move that failed its safety checks is recorded, then reported as an error."""
    if decision.mode in ("manual", "rollback") and decision.verdict == "reject":
        raise UnsafePromotionError(
            f"Refused to move @champion to {decision.model_name} v{decision.challenger_version}: "
            f"{decision.reason}"
        )


@flow(name="promote", log_prints=True)
def promote(
    challenger_version: str | None = None,
    start: PartitionKey | None = None,
    end: PartitionKey | None = None,
    mode: str | None = None,
    decided_by: str = "promote flow",
    as_of: PartitionKey | None = None,
    overrides: dict[str, Any] | None = None,
) -> PromotionDecision:
    """Compare the challenger (default: @challenger) with @champion on the same recent labelled
    data and move @champion only if every gate passes (mode `approve`: and a person approves;
    mode `manual`: a person's move, checked for safety only). The decision is tagged on the
    version and published as an artifact whatever the verdict. `as_of` limits the default
    comparison window to labels known by that day (retrain and replay pass it).

    Args:
        challenger_version: Version to consider (default: the one with @challenger).
        start: First labelled day both models are compared on (default: promotion_window_days
            days before `end`).
        end: Last labelled day of the comparison (default: the latest labelled day).
        mode: auto (gates decide), approve (gates, then a person approves in this UI) or manual
            (a person's choice, checked for safety only); default: the promotion_mode setting.
        decided_by: Who or what asked for the decision, recorded on the version.
        as_of: Use only labels known by this day (replays and retrains of past days).
        overrides: Settings to change for this run, by knob name, e.g. {"min_roc_auc": 0.7};
            see the README's Settings table.
    """
    settings = load_settings(**(overrides or {}))
    mode = mode or settings.promotion.promotion_mode
    challenger = (
        get_version(settings, challenger_version)
        if challenger_version
        else resolve_alias(settings.registry, settings.registry.challenger_alias)
    )
    champion = find_alias(settings.registry, settings.registry.champion_alias)
    if champion and champion.version == challenger.version:
        raise UnsafePromotionError(
            f"{challenger.name} v{challenger.version} already is @{settings.registry.champion_alias}"
        )
    if mode == "manual":
        decision = manual_decision(settings, challenger, champion, "manual", decided_by)
    else:
        storage = lake_storage(settings.lake)
        if start is None or end is None:
            latest = (
                settings.dataset.partitioning.floor(as_of)
                if as_of
                else latest_labelled_day(storage, settings.dataset)
            )
            start, end, evaluation = promotion_window(settings, challenger, latest, champion)
        else:
            evaluation = "the requested window"
        if champion and start > end:  # every day to judge on was in the champion's training window
            decision = no_unseen_rows_decision(settings, challenger, champion, evaluation, mode)
        else:
            frame, _ = gate_training_window(storage, settings.dataset, start, end, settings.gate)
            holdout = (
                load_holdout_predictions(storage, settings.dataset, challenger)
                if evaluation == HELD_OUT_DAYS
                else None
            )
            decision = challenger_decision(
                settings, challenger, champion, frame, f"{evaluation}: {start}..{end}", mode, holdout
            )
        decision.decided_by = decided_by
        if mode == "approve" and decision.verdict == "promote":
            alert_decision(decision, settings.registry.tracking_uri, PROMOTION_AWAITING_APPROVAL)
            decision = request_approval(decision, settings.promotion.approval_timeout_seconds)
    decision = record_decision(settings.registry, decision)
    publish_promotion_report(decision)
    alert_decision(decision, settings.registry.tracking_uri)
    refuse_if_unsafe(decision)
    print(
        f"{decision.verdict.upper()} {decision.model_name} v{decision.challenger_version}: {decision.reason}"
    )
    return decision


@flow(name="rollback", log_prints=True)
def rollback(decided_by: str = "rollback flow", overrides: dict[str, Any] | None = None) -> PromotionDecision:
    """Restore @previous_champion as @champion (the current one becomes @previous_champion).

    Args:
        decided_by: Who asked for the rollback, recorded on the version.
        overrides: Settings to change for this run, by knob name, e.g. {"min_roc_auc": 0.7};
            see the README's Settings table.
    """
    settings = load_settings(**(overrides or {}))
    previous = rollback_target(settings)
    champion = find_alias(settings.registry, settings.registry.champion_alias)
    decision = record_decision(
        settings.registry, manual_decision(settings, previous, champion, "rollback", decided_by)
    )
    publish_promotion_report(decision)
    alert_decision(decision, settings.registry.tracking_uri)
    refuse_if_unsafe(decision)
    print(f"ROLLBACK {decision.model_name}: @champion is v{decision.challenger_version} again")
    return decision


def alert_decision(decision: PromotionDecision, tracking_uri: str, event: str | None = None) -> None:
    """Tell people what promotion decided (or, with `event`, that it waits for an approver)."""
    if event is None:
        event = {"promote": PROMOTION_MADE, "rollback": PROMOTION_ROLLED_BACK}.get(
            decision.verdict, PROMOTION_REFUSED
        )
    what = {
        PROMOTION_AWAITING_APPROVAL: "waits for a person's approval in the Prefect UI to become @champion",
        PROMOTION_MADE: "is now @champion",
        PROMOTION_ROLLED_BACK: "is @champion again (rollback)",
        PROMOTION_REFUSED: "was refused as @champion",
    }[event]
    before = f"v{decision.champion_version}" if decision.champion_version else "none"
    emit_alert(
        event,
        decision.model_name,
        f"{decision.model_name} v{decision.challenger_version} {what} (champion before: {before}; "
        f"mode {decision.mode}, decided by {decision.decided_by})",
        version=decision.challenger_version,
        reasons=[decision.reason],
        tracking_uri=tracking_uri,
    )
