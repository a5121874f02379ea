"""The lake catalog: every location is where the README says it is (existing lakes keep working),
and no other module spells a lake path."""

import ast
import re
from datetime import date
from pathlib import Path

import pytest

from inferloop.core import catalog
from inferloop.core.settings import REPO_ROOT

DAY = date(2026, 1, 2)
ARRIVAL = date(2026, 1, 3)
SHA256 = "0123456789abcdef" + "f" * 48


LAYOUT = [
    (catalog.features("transactions", DAY), "transactions/date=2026-01-02"),
    (catalog.features_file("transactions", DAY), "transactions/date=2026-01-02/part-0.parquet"),
    (catalog.imported_features_file("elec2", DAY), "elec2/date=2026-01-02/part-import.parquet"),
    (catalog.labels("transactions", ARRIVAL), "transactions_labels/date=2026-01-03"),
    (
        catalog.labels_file("transactions", ARRIVAL, DAY),
        "transactions_labels/date=2026-01-03/part-2026-01-02.parquet",
    ),
    (
        catalog.validation_report("transactions_inference", DAY),
        "validation/transactions_inference/date=2026-01-02/report.json",
    ),
    (catalog.quarantine("transactions_inference", DAY), "quarantine/transactions_inference/date=2026-01-02"),
    (
        catalog.quarantine_file("transactions_training", DAY),
        "quarantine/transactions_training/date=2026-01-02/part-0.parquet",
    ),
    (
        catalog.import_quarantine_file("elec2", SHA256),
        "quarantine/import/elec2/part-0123456789abcdef.parquet",
    ),
    (catalog.model_predictions("fraud"), "predictions/model=fraud"),
    (catalog.predictions("fraud", "3", DAY), "predictions/model=fraud/version=3/date=2026-01-02"),
    (catalog.version_predictions("fraud", "3"), "predictions/model=fraud/version=3"),
    (catalog.holdout_predictions("fraud", "3"), "predictions/model=fraud/version=3/_holdout.parquet"),
    (
        catalog.predictions_file("fraud", "3", DAY),
        "predictions/model=fraud/version=3/date=2026-01-02/part-0.parquet",
    ),
    (
        catalog.predictions_manifest("fraud", "3", DAY),
        "predictions/model=fraud/version=3/date=2026-01-02/_manifest.json",
    ),
    (catalog.monitoring_day("transactions", DAY), "monitoring/transactions/date=2026-01-02"),
    (catalog.monitoring_report("transactions", DAY), "monitoring/transactions/date=2026-01-02/report.json"),
    (
        catalog.monitoring_metrics("transactions", DAY),
        "monitoring/transactions/date=2026-01-02/metrics.parquet",
    ),
    (catalog.history_chart_file("transactions", DAY), "monitoring/transactions/date=2026-01-02/history.png"),
    (
        catalog.retrain_decisions_file("transactions", DAY),
        "monitoring/transactions/retrain_decisions/date=2026-01-02/decisions.json",
    ),
    (catalog.replay_table("transactions", DAY, ARRIVAL), "replay/transactions/2026-01-02_2026-01-03.parquet"),
    (
        catalog.replay_comparison("transactions", DAY, ARRIVAL),
        "replay/transactions/2026-01-02_2026-01-03_comparison.parquet",
    ),
    (
        catalog.replay_comparison_json("transactions", DAY, ARRIVAL),
        "replay/transactions/2026-01-02_2026-01-03_comparison.json",
    ),
    (
        catalog.replay_comparison_chart("transactions", DAY, ARRIVAL),
        "replay/transactions/2026-01-02_2026-01-03_comparison.png",
    ),
    (catalog.online_requests("fraud", DAY), "online/fraud/date=2026-01-02"),
]


@pytest.mark.parametrize(("path", "expected"), LAYOUT)
def test_paths_are_todays_layout(path, expected):
    """The strings on disk: changing one strands every existing lake."""
    assert path == expected


def test_partition_names_round_trip():
    assert catalog.partition_name(DAY) == "date=2026-01-02"
    assert catalog.partition_day(catalog.partition_name(DAY)) == DAY
    directory = catalog.predictions("fraud", "12", DAY).split("/")[2]
    assert catalog.version_of(directory) == "12"


def test_scoring_caption_leaves_version_and_day_open():
    uri = "s3://bucket/lake/" + catalog.predictions("fraud", "3", DAY)
    assert catalog.any_version_and_day(uri) == "s3://bucket/lake/predictions/model=fraud/version=V/date=D"


def readme_form(path: str, **placeholders: str) -> str:
    for value, placeholder in placeholders.items():
        path = path.replace(value, placeholder)
    return path


@pytest.mark.parametrize(
    ("path", "documented"),
    [
        (catalog.features("<dataset>", DAY), {"2026-01-02": "YYYY-MM-DD"}),
        (catalog.labels("<dataset>", DAY), {"2026-01-02": "YYYY-MM-DD"}),
        (catalog.quarantine("<suite>", DAY), {"2026-01-02": "D"}),
        (catalog.predictions_file("NAME", "V", DAY), {"2026-01-02": "D"}),
        (catalog.monitoring_day("<dataset>", DAY), {"2026-01-02": "D"}),
        (catalog.retrain_decisions("<dataset>"), {}),
        (catalog.imported_features_file("<name>", DAY), {"2026-01-02": "D"}),
        (catalog.labels_file("<name>", ARRIVAL, DAY), {"2026-01-03": "<D + delay_days>", "2026-01-02": "D"}),
        (catalog.import_quarantine_file("<name>", "<content hash>"), {}),
        (
            catalog.replay_comparison("<dataset>", DAY, ARRIVAL),
            {"2026-01-02": "<start>", "2026-01-03": "<end>"},
        ),
    ],
)
def test_readme_documents_the_catalog(path, documented):
    """The README's Data, Batch inference and Bring your own data sections name these paths."""
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"`{readme_form(path, **documented)}" in readme


# What a lake path looks like inside a string literal (an f-string is read as its template,
# each replacement field as "{}"). Docstrings are documentation and may describe the layout.
LAKE_PATH = re.compile(
    r"(?<![\w-])(date|model|version)="  # partition keys: date=D, model=NAME, version=V
    r"|(^|/)(predictions|quarantine|validation|monitoring|replay|online)/"  # under a table root
    r"|^predictions$"  # the predictions root itself (the other roots' names are common words)
    r"|_labels\b|retrain_decisions|_manifest|\bpart-|[\w}]\.parquet"
    r"|\b(report|decisions)\.json|\bhistory\.png"
)
SCANNED = ("inferloop", "tasks", "flows", "benchmarks")
CATALOG = REPO_ROOT / "inferloop" / "core" / "catalog.py"


def docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def string_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal that is not a docstring; f-strings as templates."""
    tree = ast.parse(source)
    skipped = docstrings(tree)
    literals = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            template = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            literals.append((node.lineno, template))
            skipped.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            literals.append((node.lineno, node.value))
    return literals


def lake_path_literals(source: str) -> list[tuple[int, str]]:
    return [(line, text) for line, text in string_literals(source) if LAKE_PATH.search(text)]


@pytest.mark.parametrize(
    "planted",
    [
        'path = f"predictions/model={name}/version={version}/date={day}"',
        'root = "predictions"',
        'labels = f"{spec.name}_labels"',
        'days = storage.subdirectories(table, "date=")',
        'name = "_manifest.json"',
        'table = f"replay/{spec.name}/{start}_{end}.parquet"',
        'path = f"{directory}/report.json"',
        'path = "quarantine/import/x/part-0.parquet"',
    ],
)
def test_the_scan_finds_a_planted_lake_path(planted):
    docstring = '"""predictions/model=NAME/date=D/ is fine here."""'
    assert lake_path_literals(f"def f():\n    {docstring}\n    {planted}\n")


def test_the_scan_leaves_other_strings_alone():
    source = (
        '"""Writes predictions/model=NAME/version=V/date=D/part-0.parquet."""\n'
        'SUFFIXES = (".parquet", ".pq")\n'
        'EXPERIMENT = "inferloop-monitoring"\n'
        'prefix = "write-predictions"\n'
        'message = f"{rows} rows quarantined, see {uri}"\n'
    )
    assert lake_path_literals(source) == []


def test_no_module_but_the_catalog_spells_a_lake_path():
    found = [
        f"{path.relative_to(REPO_ROOT)}:{line}: {text!r}"
        for top in SCANNED
        for path in sorted((REPO_ROOT / top).rglob("*.py"))
        if path != CATALOG
        for line, text in lake_path_literals(path.read_text())
    ]
    assert not found, "lake paths outside inferloop/core/catalog.py (ask the catalog):\n" + "\n".join(found)


def test_the_scan_covers_the_code():
    scanned = {path for top in SCANNED for path in (REPO_ROOT / top).rglob("*.py")}
    assert REPO_ROOT / "tasks" / "scoring" / "batch_scoring.py" in scanned
    assert REPO_ROOT / "flows" / "replay.py" in scanned
    assert CATALOG in scanned and lake_path_literals(Path(CATALOG).read_text())
