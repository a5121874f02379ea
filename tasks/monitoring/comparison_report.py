"""A policy comparison in the lake: a row per policy (parquet), the whole of it (JSON) and the
monitored metric over time, one line per policy (PNG)."""

import io
import json

import pandas as pd
import pyarrow as pa

from inferloop.core import catalog
from inferloop.core.periods import parse_key
from inferloop.core.storage import Storage
from inferloop.tasks.monitoring.policy_comparison import PolicyComparison

METRICS = (
    "accuracy",
    "roc_auc",
    "balanced_accuracy",
    "pr_auc",
    "f1",
    "log_loss",
    "calibration_error",
    "label_rate",
    "predicted_positive_rate",
)


def comparison_frame(comparison: PolicyComparison) -> pd.DataFrame:
    """One row per policy, its metrics flattened into columns (missing ones are NaN)."""
    columns = [
        "policy",
        "rows",
        "retrains",
        "promotions",
        "compute_seconds",
        "hindsight",
        "rejections",
        *METRICS,
    ]
    rows = [
        {
            "policy": p.policy,
            "rows": p.rows,
            "retrains": p.retrains,
            "promotions": p.promotions,
            "compute_seconds": p.compute_seconds,
            "hindsight": p.hindsight,
            "rejections": p.rejections,
            **{metric: p.metrics.get(metric, float("nan")) for metric in METRICS},
        }
        for p in comparison.policies
    ]
    return pd.DataFrame(rows, columns=columns).astype(
        {"rows": "int64", "retrains": "int64", "promotions": "int64", "compute_seconds": "float64"}
        | dict.fromkeys(METRICS, "float64")
    )


def comparison_chart(comparison: PolicyComparison) -> bytes:
    """PNG: the monitored metric per period, one line per policy."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and workers
    import matplotlib.pyplot as plt

    periods = list(dict.fromkeys(point["period"] for point in comparison.over_time))
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for policy in dict.fromkeys(point["policy"] for point in comparison.over_time):
        values = {p["period"]: p["value"] for p in comparison.over_time if p["policy"] == policy}
        line = [float("nan") if values.get(period) is None else values[period] for period in periods]
        axes.plot(range(len(periods)), line, marker="o", markersize=3, label=policy)
    axes.set_xticks(
        range(len(periods)), [period.split("..")[0] for period in periods], rotation=45, ha="right"
    )
    axes.set_ylabel(comparison.monitor_metric)
    axes.set_xlabel("period (first day)")
    axes.legend(loc="best", fontsize="small")
    axes.set_title(
        f"{comparison.dataset} replay {comparison.start}..{comparison.end}: {comparison.monitor_metric} "
        f"by period (labels {comparison.label_delay_days} {comparison.partition}(s) late)"
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


def save_comparison(storage: Storage, comparison: PolicyComparison) -> PolicyComparison:
    """Write the table, the chart (when a period was measured) and the JSON (last, with the
    other two's URIs in `saved_to`); returns the comparison with `saved_to` filled in."""
    start, end = parse_key(comparison.start), parse_key(comparison.end)
    table = catalog.replay_comparison(comparison.dataset, start, end)
    storage.write_table(table, pa.Table.from_pandas(comparison_frame(comparison), preserve_index=False))
    comparison.saved_to["table"] = storage.uri(table)
    if any(point["value"] is not None for point in comparison.over_time):
        chart = catalog.replay_comparison_chart(comparison.dataset, start, end)
        storage.write_bytes(chart, comparison_chart(comparison))
        comparison.saved_to["chart"] = storage.uri(chart)
    document = catalog.replay_comparison_json(comparison.dataset, start, end)
    comparison.saved_to["json"] = storage.uri(document)
    storage.write_json(document, comparison.to_dict())
    return comparison


def comparison_json(comparison: PolicyComparison) -> str:
    """The comparison as a JSON document (what `inferloop replay --json` writes)."""
    return json.dumps(comparison.to_dict(), indent=2, default=str)
