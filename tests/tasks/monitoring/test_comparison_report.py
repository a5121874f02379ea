"""A policy comparison in the lake and on screen (tasks/monitoring/comparison_report.py and
`comparison_table` / `comparison_over_time_table` in tasks/report_tables.py)."""

from datetime import date

import pytest

from inferloop.core import catalog
from inferloop.core.storage import Storage
from inferloop.tasks.monitoring.comparison_report import comparison_json, save_comparison
from inferloop.tasks.monitoring.policy_comparison import PolicyComparison, PolicyResult
from inferloop.tasks.report_tables import comparison_over_time_table, comparison_table

START, END = date(2026, 1, 5), date(2026, 1, 8)
VERDICT = "The loop: f1 0.400 with 1 retrains; first model kept: 0.300, the loop is better by 0.100."


def comparison(monitor_metric: str = "f1", policies: bool = True) -> PolicyComparison:
    metrics = {
        "accuracy": 0.9,
        "roc_auc": 0.8,
        "balanced_accuracy": 0.7,
        "f1": 0.4,
        "calibration_error": 0.01,
        "label_rate": 0.05,
        "predicted_positive_rate": 0.0,
    }
    results = [
        PolicyResult(
            "inferloop loop",
            120,
            metrics,
            retrains=1,
            promotions=1,
            compute_seconds=2.25,
            hindsight="1 better",
            rejections="2 no clear difference",
        ),
        PolicyResult("first model kept", 120, {"accuracy": 0.85, "calibration_error": 0.02}),
    ]
    over_time = [
        {"period": period, "policy": p.policy, "value": value, "rows": 60}
        for period, value in (("2026-01-05..2026-01-06", 0.5), ("2026-01-07..2026-01-08", None))
        for p in results
    ]
    return PolicyComparison(
        "transactions",
        START.isoformat(),
        END.isoformat(),
        monitor_metric,
        1,
        7,
        results if policies else [],
        over_time if policies else [],
        VERDICT,
    )


@pytest.fixture
def lake(tmp_path) -> Storage:
    return Storage((tmp_path / "lake").as_uri())


def test_a_comparison_is_saved_as_a_row_per_policy_its_json_and_a_chart(lake):
    saved = save_comparison(lake, comparison())

    table = lake.read_table(catalog.replay_comparison("transactions", START, END)).to_pandas()
    assert table["policy"].tolist() == ["inferloop loop", "first model kept"]
    assert table["rows"].tolist() == [120, 120] and table["compute_seconds"].tolist() == [2.25, 0.0]
    assert table["hindsight"].tolist() == ["1 better", ""]
    assert table["rejections"].tolist() == ["2 no clear difference", ""]
    assert table["roc_auc"].iloc[0] == 0.8 and table["roc_auc"].isna().iloc[1]  # not measured: NaN
    assert (table["label_rate"].iloc[0], table["predicted_positive_rate"].iloc[0]) == (0.05, 0.0)
    document = lake.read_json(catalog.replay_comparison_json("transactions", START, END))
    assert document["verdict"] == VERDICT and document["policies"][0]["metrics"]["f1"] == 0.4
    chart = catalog.replay_comparison_chart("transactions", START, END)
    assert lake.read_bytes(chart)[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        document["saved_to"]
        == saved.saved_to
        == {
            "table": lake.uri(catalog.replay_comparison("transactions", START, END)),
            "chart": lake.uri(chart),
            "json": lake.uri(catalog.replay_comparison_json("transactions", START, END)),
        }
    )
    assert '"verdict": "The loop: f1 0.400' in comparison_json(saved)


def test_an_empty_comparison_still_saves_its_table_and_json(lake):
    save_comparison(lake, comparison(policies=False))

    table = lake.read_table(catalog.replay_comparison("transactions", START, END)).to_pandas()
    assert len(table) == 0 and {"policy", "rows", "roc_auc", "retrains"} <= set(table.columns)
    assert lake.read_json(catalog.replay_comparison_json("transactions", START, END))["policies"] == []
    assert not lake.exists(catalog.replay_comparison_chart("transactions", START, END))


@pytest.mark.parametrize(
    ("metric", "headings"),
    [
        ("f1", ["accuracy", "ROC AUC", "balanced accuracy", "f1"]),
        ("roc_auc", ["accuracy", "ROC AUC", "balanced accuracy"]),
    ],
)
def test_the_table_shows_the_monitored_metric_once_and_the_verdict(metric, headings):
    table = comparison_table(comparison(metric))
    assert [c.heading for c in table.columns] == [
        "policy",
        "rows",
        *headings,
        "retrains",
        "promotions",
        "compute s",
        "promotions in hindsight",
        "rejected challengers in hindsight",
    ]
    assert table.rows[0][:5] == ("inferloop loop", 120, "0.900", "0.800", "0.700")
    assert table.rows[1][3] == ""  # not measured
    assert table.rows[0][-5:] == (1, 1, "2.2", "1 better", "2 no clear difference")
    assert table.caption.startswith(VERDICT)


def test_the_over_time_table_has_a_column_per_policy_and_the_verdict_as_title():
    table = comparison_over_time_table(comparison())
    assert table.title == VERDICT
    assert [c.heading for c in table.columns] == ["period", "rows", "inferloop loop", "first model kept"]
    assert table.rows == (
        ("2026-01-05..2026-01-06", 60, "0.500", "0.500"),
        ("2026-01-07..2026-01-08", 60, "", ""),
    )
