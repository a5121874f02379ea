"""Rich tables the CLI prints: the same report objects the Prefect artifacts render."""

from rich.table import Table


def validation_table(report) -> Table:
    table = Table(
        title=f"{report.suite} {report.partition_date}: {report.decision.upper()} "
        f"({report.rows_in} in, {report.rows_passed} passed, "
        f"{report.rows_quarantined} quarantined, {report.rows_refused} refused)"
    )
    for column in ("expectation", "severity", "ok", "unexpected rows", "detail"):
        table.add_column(column)
    for e in report.failed:
        table.add_row(e.name, e.severity, "yes" if e.success else "NO", str(e.unexpected_count), e.detail)
    if report.quarantine_uri:
        table.caption = f"quarantine: {report.quarantine_uri}; Data Docs: {report.data_docs_uri}"
    return table


def promotion_summary(decision) -> Table:
    table = Table(
        title=f"{decision.verdict.upper()}: {decision.model_name} v{decision.challenger_version} "
        f"(champion before: {decision.champion_version or 'none'})",
        caption=f"{decision.reason} — {decision.mode}, {decision.decided_by}",
    )
    for column in ("gate", "result", "detail"):
        table.add_column(column)
    for check in decision.checks:
        table.add_row(check.name, "pass" if check.passed else "FAIL", check.detail)
    return table


def scoring_table(manifests) -> Table:
    table = Table(title="Batch scoring")
    for column in ("date", "role", "rows in", "scored", "quarantined", "model version", "status"):
        table.add_column(column)
    for m in manifests:
        table.add_row(
            m.partition_date,
            m.role,
            str(m.rows_in),
            str(m.rows_scored),
            str(m.rows_quarantined),
            m.model_version,
            "already scored (no-op)" if m.reused else "scored",
        )
    if manifests:
        root = manifests[0].output_uri.rsplit("/version=", 1)[0]
        table.caption = f"{manifests[0].model_name}; output under {root}/version=V/date=D"
    return table


def recent_runs_table(limit: int = 10) -> Table:
    from prefect import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    table = Table(title=f"Latest {limit} flow runs")
    for column in ("flow run", "state", "started"):
        table.add_column(column)
    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=limit):
            table.add_row(run.name, run.state_name or "", str(run.start_time or ""))
    return table


def import_table(summary) -> Table:
    days = f"{summary.days} days, {summary.first_day}..{summary.last_day}" if summary.days else "no days"
    table = Table(title=f"Import into {summary.dataset} ({days})")
    for column in ("rows", "count", "where"):
        table.add_column(column)
    table.add_row("in", str(summary.rows_in), summary.source_uri)
    table.add_row("written", str(summary.rows_written), f"{summary.features_uri}, {summary.labels_uri}")
    table.add_row("quarantined", str(summary.rows_quarantined), summary.quarantine_uri or "")
    for reason, rows in summary.reasons.items():
        table.add_row(f"  {reason}", str(rows), "")
    return table


def replay_table(summary) -> Table:
    """The day-by-day record of a replay or demo, then the prequential comparison."""
    table = Table(title=f"{summary.dataset} replay {summary.start}..{summary.end}")
    for column in (
        "day",
        "champion",
        "scored",
        "quarantined",
        "labelled",
        "accuracy",
        "ROC AUC",
        "drift",
        "retrain",
    ):
        table.add_column(column)
    for day in summary.days:
        table.add_row(
            day.day,
            f"v{day.champion_version}",
            "REFUSED" if day.refused else str(day.rows_scored),
            str(day.rows_quarantined),
            str(day.labelled_rows),
            _maybe(day.accuracy),
            _maybe(day.roc_auc),
            ", ".join(day.drifted),
            day.retrain,
        )
    table.caption = (
        f"prequential accuracy: loop {_maybe(summary.loop.get('accuracy'))} vs static "
        f"{_maybe(summary.static.get('accuracy'))}; ROC AUC: loop {_maybe(summary.loop.get('roc_auc'))} vs "
        f"static {_maybe(summary.static.get('roc_auc'))}; {summary.retrains} retrain(s), "
        f"{summary.promotions} promotion(s); table: {summary.table_uri}"
    )
    return table


def _maybe(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
