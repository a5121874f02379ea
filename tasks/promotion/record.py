"""Applying promotion decisions to the registry, one at a time, and recording them.

Every move of `@champion` (automatic, approved, by hand, rollback, bootstrap) goes through
`record_decision`: the decision is applied under a lock, written on the version as tags and
appended to the version's model card.
"""

import json
from dataclasses import replace

from inferloop.core.registry import BREACH_TAG
from inferloop.core.settings import RegistrySettings
from inferloop.runtime.locks import global_lock
from inferloop.tasks.model.model_card import write_model_card
from inferloop.tasks.model.registry import find_alias, model_registry
from inferloop.tasks.promotion.decision import PromotionDecision

PROMOTION_LOCK = "inferloop-promotion"


def record_decision(registry: RegistrySettings, decision: PromotionDecision) -> PromotionDecision:
    """Apply `decision` to the registry and tag the challenger version with it.

    Under the promotion lock the champion is re-read: if it changed since the evidence was
    gathered, the decision is turned into a rejection (rerun promote) rather than applied on
    stale evidence. On promotion the old champion stays reachable as `previous_champion`.
    """
    with global_lock(PROMOTION_LOCK):
        decision = _apply(registry, decision)
        # The decision history changed: the version's model card is rewritten with it.
        decision.model_card = write_model_card(
            registry, decision.model_name, decision.challenger_version, decision
        )
        return decision


def _apply(registry_settings: RegistrySettings, decision: PromotionDecision) -> PromotionDecision:
    registry = replace(model_registry(registry_settings), model_name=decision.model_name)
    current = find_alias(registry_settings, registry_settings.champion_alias)
    current_version = current.version if current else None
    if decision.promoted and current_version != decision.champion_version:
        decision.verdict = "reject"
        decision.reason = (
            f"@{registry_settings.champion_alias} moved to v{current_version} while this decision was "
            f"made on v{decision.champion_version}: rerun promote"
        )
    # The record first: a run killed in between leaves a decision whose alias did not move
    # (rerun promote), never a champion that moved with no decision recorded.
    registry.tag_version(decision.challenger_version, decision_tags(decision))
    if decision.promoted:
        if current_version and current_version != decision.challenger_version:
            registry.set_alias(registry_settings.previous_champion_alias, current_version)
        registry.set_alias(registry_settings.champion_alias, decision.challenger_version)
        # A version's breach belongs to its last time as champion: a restored one starts without it.
        if BREACH_TAG in registry.version_tags(decision.challenger_version):
            registry.untag_version(decision.challenger_version, BREACH_TAG)
        if decision.mode != "rollback" and _alias_version(
            registry_settings, registry_settings.challenger_alias
        ) == (decision.challenger_version):
            registry.delete_alias(registry_settings.challenger_alias)
    return decision


def _alias_version(registry_settings: RegistrySettings, alias: str) -> str | None:
    ref = find_alias(registry_settings, alias)
    return ref.version if ref else None


def decision_tags(decision: PromotionDecision) -> dict[str, str]:
    tags = {
        "verdict": decision.verdict,
        "reason": decision.reason[:4000],
        "mode": decision.mode,
        "decided_by": decision.decided_by,
        "decided_at": decision.decided_at,
        "champion_before": decision.champion_version or "none",
        "evaluation": decision.evaluation,
        "failed_checks": ",".join(c.name for c in decision.checks if not c.passed),
        "challenger_metrics": json.dumps({k: round(v, 5) for k, v in decision.challenger_metrics.items()}),
    }
    if decision.champion_metrics:
        tags["champion_metrics"] = json.dumps({k: round(v, 5) for k, v in decision.champion_metrics.items()})
    return {f"inferloop.decision.{k}": v for k, v in tags.items()}
