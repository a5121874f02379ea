"""A report as one neutral table: what a run's Prefect artifact and the CLI both render.

Every report object (a gate verdict, a promotion decision, scoring manifests, ...) is turned
into a `ReportTable` once, in `inferloop.tasks.report_tables`; the Prefect artifacts
(`inferloop.tasks.reports`) and the terminal (`inferloop.cli.tables`) only lay it out. Plain
data: no Prefect, no rich.
"""

from dataclasses import dataclass

Cell = str | int | float | bool | None


@dataclass(frozen=True)
class Column:
    """One column: `name` keys the rows of a table artifact (JSON, read by the UI and by
    scripts), `label` heads it where people read it (terminal, markdown)."""

    name: str
    label: str = ""
    # False for long values (URIs) a terminal table cannot fit: the caption says where they are.
    in_terminal: bool = True

    @property
    def heading(self) -> str:
        return self.label or self.name


def columns(*specs: str | Column) -> tuple[Column, ...]:
    """Columns from names (a name is its own label) or `Column`s."""
    return tuple(spec if isinstance(spec, Column) else Column(spec) for spec in specs)


@dataclass(frozen=True)
class ReportTable:
    """A report: a title that carries the verdict, one table, a caption saying where things
    are, and optional markdown `sections` (between the title and the table) that only the
    Prefect artifact shows."""

    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...] = ()
    caption: str = ""
    sections: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"{self.title!r}: {row!r} has {len(row)} cells, not {len(self.columns)}")

    def records(self) -> list[dict[str, Cell]]:
        """The rows keyed by column name, values as they are (a table artifact's data)."""
        names = [column.name for column in self.columns]
        return [dict(zip(names, row, strict=True)) for row in self.rows]


def cell_text(value: Cell) -> str:
    """A cell as people read it: empty for a missing value, yes/no for a flag."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
