import pytest

from inferloop.core.report_table import Column, ReportTable, cell_text, columns


def test_records_key_each_row_by_column_name_with_values_as_they_are():
    table = ReportTable(
        title="t",
        columns=columns("feature", Column("unseen_share", "unseen share"), "flagged"),
        rows=(("amount", None, True), ("merchant", 0.02, False)),
    )
    assert table.records() == [
        {"feature": "amount", "unseen_share": None, "flagged": True},
        {"feature": "merchant", "unseen_share": 0.02, "flagged": False},
    ]
    assert [c.heading for c in table.columns] == ["feature", "unseen share", "flagged"]


def test_a_row_that_does_not_fit_the_columns_is_refused():
    with pytest.raises(ValueError, match="2 cells, not 3"):
        ReportTable(title="t", columns=columns("a", "b", "c"), rows=(("x", "y"),))


def test_cells_read_as_people_read_them():
    assert [cell_text(v) for v in (None, True, False, 0, 0.5, "x")] == ["", "yes", "no", "0", "0.5", "x"]
