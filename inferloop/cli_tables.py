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
