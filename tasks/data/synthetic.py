"""Deterministic synthetic card-transaction feed with named drift and fault scenarios.

Every day is generated from its own seed (scenario seed, day index), so any day can be
regenerated alone and identically. The label depends on the features through a fraud-risk
logit; `concept_drift` swaps that logit for a different fraud pattern from `change_day` on,
`covariate_drift` shifts the `amount` distribution only (the label relationship is unchanged),
and `quality_faults` injects the defects a real feed has on chosen days.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

import numpy as np
import pandas as pd

Scenario = Literal["stable", "covariate_drift", "concept_drift", "quality_faults"]
SCENARIOS: tuple[str, ...] = ("stable", "covariate_drift", "concept_drift", "quality_faults")

MERCHANT_CATEGORIES = [
    "grocery",
    "fuel",
    "restaurants",
    "electronics",
    "travel",
    "fashion",
    "gaming",
    "pharmacy",
    "digital_goods",
    "jewelry",
]
CHANNELS = ["pos", "online", "contactless", "atm"]
COUNTRIES = ["DE", "FR", "GB", "US", "ES", "IT", "NL", "PL", "BR", "NG"]
DEVICES = ["mobile", "desktop", "tablet", "terminal"]


@dataclass(frozen=True)
class GeneratorConfig:
    scenario: Scenario = "stable"
    start: date = date(2026, 1, 1)
    days: int = 14
    rows_per_day: int = 5_000
    seed: int = 7
    change_day: int | None = None  # first drifted day index; default: the middle of the range
    fault_days: tuple[int, ...] = field(default=())  # row-level faults; default: day 3
    renamed_column_days: tuple[int, ...] = field(default=())  # critical fault; default: day 5

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"Unknown scenario {self.scenario!r}: choose one of {SCENARIOS}")
        if self.days < 1 or self.rows_per_day < 1:
            raise ValueError("days and rows_per_day must be at least 1")

    @property
    def drift_start(self) -> int:
        return self.days // 2 if self.change_day is None else self.change_day

    @property
    def row_fault_days(self) -> tuple[int, ...]:
        if self.scenario != "quality_faults":
            return ()
        return self.fault_days or (min(3, self.days - 1),)

    @property
    def rename_days(self) -> tuple[int, ...]:
        if self.scenario != "quality_faults":
            return ()
        return self.renamed_column_days or (min(5, self.days - 1),)

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)


# Column renamed on critical-fault days: the feed's producer changed a name without telling us.
RENAMED_COLUMN = ("amount", "amt")
LABEL_COLUMN = "is_fraud"
ID_COLUMN = "transaction_id"
TIME_COLUMN = "event_time"


def _features(rng: np.random.Generator, n: int, day: date, amount_shift: float) -> pd.DataFrame:
    seconds = np.sort(rng.integers(0, 86_400, n))
    event_time = pd.Timestamp(datetime.combine(day, time())) + pd.to_timedelta(seconds, unit="s")
    tx_count_1h = rng.poisson(0.6, n)
    return pd.DataFrame(
        {
            TIME_COLUMN: event_time,
            "amount": np.round(rng.lognormal(3.4 + amount_shift, 1.0, n), 2),
            "amount_to_avg_ratio": np.round(rng.lognormal(0.0, 0.6, n), 4),
            "tx_count_1h": tx_count_1h.astype(float),
            "tx_count_24h": (tx_count_1h + rng.poisson(4.0, n)).astype(float),
            "distinct_merchants_24h": rng.poisson(2.0, n).astype(float),
            "account_age_days": np.round(rng.gamma(2.0, 400.0, n), 1),
            "distance_from_home_km": np.round(rng.lognormal(2.0, 1.3, n), 2),
            "minutes_since_last_tx": np.round(rng.exponential(300.0, n), 1),
            "hour_of_day": (seconds // 3600).astype(float),
            "failed_logins_7d": rng.poisson(0.2, n).astype(float),
            "merchant_category": rng.choice(
                MERCHANT_CATEGORIES, n, p=[0.2, 0.12, 0.15, 0.08, 0.07, 0.1, 0.06, 0.08, 0.08, 0.06]
            ),
            "channel": rng.choice(CHANNELS, n, p=[0.4, 0.3, 0.25, 0.05]),
            "country": rng.choice(
                COUNTRIES, n, p=[0.25, 0.15, 0.15, 0.12, 0.08, 0.08, 0.07, 0.05, 0.03, 0.02]
            ),
            "device": rng.choice(DEVICES, n, p=[0.45, 0.2, 0.05, 0.3]),
        }
    )


def _fraud_logit_before(df: pd.DataFrame) -> np.ndarray:
    """Card-not-present fraud: large, unusual, far-away online purchases of resellable goods."""
    return (
        -6.6
        + 1.8 * np.log1p(df["amount_to_avg_ratio"])
        + 0.9 * (np.log(df["amount"]) - 3.4)
        + 0.7 * np.log1p(df["distance_from_home_km"])
        - 1.4
        + 1.8 * df["channel"].eq("online")
        + 1.6 * df["merchant_category"].isin(["electronics", "jewelry"])
        + 1.5 * df["country"].isin(["NG", "BR"])
        + 0.8 * df["failed_logins_7d"]
        - 0.7 * ((df["hour_of_day"] >= 8) & (df["hour_of_day"] <= 20))
    ).to_numpy()


def _fraud_logit_after(df: pd.DataFrame) -> np.ndarray:
    """Card-testing fraud: bursts of small contactless/gaming payments from young accounts."""
    return (
        -5.6
        + 1.3 * df["tx_count_1h"]
        - 0.9 * (np.log(df["amount"]) - 3.4)
        + 2.0 * df["merchant_category"].isin(["gaming", "digital_goods"])
        + 1.5 * df["channel"].eq("contactless")
        - 1.3 * np.log1p(df["account_age_days"] / 100.0)
        + 1.8
        + 1.2 * df["device"].eq("tablet")
    ).to_numpy()


def generate_day(config: GeneratorConfig, index: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One day's feature partition (as production sends it) and its labels."""
    day = config.day(index)
    rng = np.random.default_rng([config.seed, index])
    drifted = index >= config.drift_start
    amount_shift = 0.8 if config.scenario == "covariate_drift" and drifted else 0.0
    features = _features(rng, config.rows_per_day, day, amount_shift)
    first_id = (day - date(2000, 1, 1)).days * 10_000_000
    features.insert(0, ID_COLUMN, np.arange(first_id, first_id + len(features), dtype=np.int64))

    concept_changed = config.scenario == "concept_drift" and drifted
    logit = _fraud_logit_after(features) if concept_changed else _fraud_logit_before(features)
    is_fraud = (rng.random(len(features)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    labels = pd.DataFrame(
        {ID_COLUMN: features[ID_COLUMN], LABEL_COLUMN: is_fraud, TIME_COLUMN: features[TIME_COLUMN]}
    )

    if index in config.row_fault_days:
        features = _inject_row_faults(features, rng)
    if index in config.rename_days:
        features = features.rename(columns=dict([RENAMED_COLUMN]))
    return features, labels


def _inject_row_faults(features: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """About 2% nulls, 1% negative amounts and 1% unknown merchant categories."""
    faulty = features.copy()
    n = len(faulty)
    faulty.loc[rng.random(n) < 0.02, "distance_from_home_km"] = np.nan
    negative = rng.random(n) < 0.01
    faulty.loc[negative, "amount"] = -faulty.loc[negative, "amount"]
    faulty.loc[rng.random(n) < 0.01, "merchant_category"] = "crypto_atm_unknown"
    return faulty
