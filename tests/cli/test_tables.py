"""The CLI's one renderer lays a `ReportTable` out as the terminal shows it: title, the columns a
terminal fits, every row, caption; data is printed as it is, never read as rich markup."""

import io

from rich.console import Console

from inferloop.cli.tables import rich_table
from inferloop.core.report_table import Column, ReportTable, columns
from inferloop.tasks.report_tables import scoring_table
from tests.tasks.test_reports import manifest


def printed(table: ReportTable) -> str:
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(rich_table(table))
    return out.getvalue()


def test_a_report_prints_its_title_rows_and_caption_and_data_is_not_markup():
    table = ReportTable(
        title="Data-quality gate t 2026-01-05: REFUSED",
        columns=columns("expectation", Column("unexpected_rows", "unexpected rows"), "ok", "detail"),
        rows=(("columns_match", 0, False, "missing columns ['amount'] and [bold]x[/bold]"),),
        caption="Quarantine: none",
    )
    text = printed(table)
    assert "Data-quality gate t 2026-01-05: REFUSED" in text and "Quarantine: none" in text
    assert "unexpected rows" in text and "unexpected_rows" not in text  # people read labels
    assert "│ columns_match │ 0 " in text and "│ no " in text
    assert "missing columns ['amount'] and [bold]x[/bold]" in text


def test_columns_a_terminal_cannot_fit_stay_out_and_the_caption_says_where():
    text = printed(scoring_table([manifest("2026-01-08"), manifest("2026-01-09", reused=True)]))
    assert "│ scored" in text and "already scored (no-op)" in text
    assert "date=2026-01-08" not in text  # the output URI column, in the Prefect artifact only
    assert "version=V/date=D" in " ".join(text.split())
