"""The data-quality gate (GX + quarantine mask) vs hand-written pandas checks of the same rules,
and the gate's share of the inference flow's wall time."""

from datetime import date

import numpy as np
import pandas as pd

from benchmarks.common import bench_lake, scoring_seconds, timed, train_model
from inferloop.tasks.gate.expectations import suite_definitions
from inferloop.tasks.gate.partition_gate import PartitionGate, decide, partition_parameters, passing_chunks
from inferloop.tasks.gate.row_checks import row_failures

DAY = date(2026, 1, 1)


def pandas_checks(frame: pd.DataFrame, expectations: list, parameters: dict) -> np.ndarray:
    """The baseline: the same rules written by hand in pandas (what a team would write first)."""
    bad = np.zeros(len(frame), dtype=bool)
    for config in expectations:
        kwargs = config.kwargs
        column = kwargs.get("column")
        if config.type == "expect_table_columns_to_match_set":
            assert set(frame.columns) == set(kwargs["column_set"])
        elif config.type == "expect_column_values_to_be_unique":
            assert frame[column].is_unique
        elif config.type == "expect_column_values_to_be_in_type_list":
            assert str(frame[column].dtype) in kwargs["type_list"]
        elif config.type == "expect_column_values_to_not_be_null":
            bad |= frame[column].isna().to_numpy()
        elif config.type == "expect_column_values_to_be_between":
            low = (
                parameters.get("partition_start")
                if isinstance(kwargs["min_value"], dict)
                else (kwargs["min_value"])
            )
            high = (
                parameters.get("partition_end")
                if isinstance(kwargs["max_value"], dict)
                else (kwargs["max_value"])
            )
            bad |= ((frame[column] < low) | (frame[column] > high)).to_numpy()
        elif config.type == "expect_column_values_to_be_in_set":
            bad |= (frame[column].notna() & ~frame[column].isin(kwargs["value_set"])).to_numpy()
    return bad


def run(rows: int) -> dict:
    settings, storage, table = bench_lake(rows)
    frame = table.to_pandas()
    suite = suite_definitions(settings.gate, settings.dataset, "inference")
    parameters = partition_parameters(DAY)
    t: dict[str, float] = {}
    with timed(t, "pandas_checks"):
        pandas_checks(frame, suite, parameters)
    with timed(t, "mask"):
        row_failures(table, suite, parameters)
    with timed(t, "gate"):
        gate = PartitionGate(storage, settings.dataset, "inference", DAY, settings.gate)
        for _ in passing_chunks(gate, table.to_batches(max_chunksize=settings.scoring.score_batch_rows)):
            pass
        decide(gate)
    model = train_model(settings)
    t["scoring"] = scoring_seconds(settings, storage, model)
    return {
        "rows": rows,
        "gate_s": t["gate"],
        "pandas_checks_s": t["pandas_checks"],
        "gate_vs_pandas": t["gate"] / t["pandas_checks"],
        "mask_rows_per_s": rows / t["mask"],
        "scoring_s": t["scoring"],
        "gate_share_of_scoring": t["gate"] / t["scoring"],
    }


def report(results: list[dict]) -> str:
    lines = [
        "| rows | gate (GX sample + mask) s | hand-written pandas s | gate/pandas | mask rows/s "
        "| scoring flow s | gate share of scoring |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:,} | {r['gate_s']:.2f} | {r['pandas_checks_s']:.2f} | "
            f"{r['gate_vs_pandas']:.1f}x | {r['mask_rows_per_s'] / 1e6:.1f}M | "
            f"{r['scoring_s']:.2f} | {r['gate_share_of_scoring']:.1%} |"
        )
    return "\n".join(lines)
