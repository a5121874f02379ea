"""The CLI's one table renderer: a report's `ReportTable` (`inferloop.tasks.report_tables`), the
same object the Prefect artifacts render, laid out as a rich table."""

from rich.markup import escape
from rich.table import Table

from inferloop.core.report_table import ReportTable, cell_text


def rich_table(report: ReportTable) -> Table:
    """Title, the columns a terminal can fit, rows, caption (a report's markdown sections are
    for the Prefect UI only)."""
    shown = [i for i, column in enumerate(report.columns) if column.in_terminal]
    # Reports quote data ("missing columns ['amount']"): none of it is rich markup.
    table = Table(title=escape(report.title), caption=escape(report.caption) or None)
    for i in shown:
        table.add_column(report.columns[i].heading)
    for row in report.rows:
        table.add_row(*(escape(cell_text(row[i])) for i in shown))
    return table
