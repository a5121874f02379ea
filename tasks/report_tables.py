"""What each report shows, decided once: every report object as a `ReportTable`.

The Prefect artifacts (`inferloop.tasks.reports`) and the CLI (`inferloop.cli.tables`) render
these tables and add nothing of their own, so the UI and the terminal cannot disagree.
Plain functions of the report objects: no Prefect, no rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inferloop.core import catalog
from inferloop.core.report_table import Column, ReportTable, columns

if TYPE_CHECKING:  # for annotations only: scoring must not import monitoring (scipy.stats, ~0.6 s)
    from inferloop.core.registry import ModelVersionRef
    from inferloop.tasks.data.importing import ImportSummary
    from inferloop.tasks.gate.validation import ValidationReport
    from inferloop.tasks.monitoring.daily_report import MonitoringReport
    from inferloop.tasks.monitoring.online import OnlineMonitoring
    from inferloop.tasks.monitoring.policy_comparison import PolicyComparison
    from inferloop.tasks.monitoring.replay import ReplaySummary
    from inferloop.tasks.monitoring.retrain_policy import RetrainDecision
    from inferloop.tasks.promotion.decision import PromotionDecision
    from inferloop.tasks.scoring.batch_scoring import ScoringManifest


def markdown_table(headings: list[str], rows: list[list[object]]) -> str:
    """A markdown table (for a report's sections); `|` in a cell is escaped."""
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def validation_table(report: ValidationReport) -> ReportTable:
    """The gate's verdict: counts, why it refused, the expectations that failed or quarantined rows."""
    reasons = "\n".join(f"- {reason}" for reason in report.reasons) or "- none"
    return ReportTable(
        title=f"Data-quality gate {report.suite} {report.partition_date}: {report.decision.upper()} "
        f"({report.rows_in} in, {report.rows_passed} passed, {report.rows_quarantined} quarantined, "
        f"{report.rows_refused} refused)",
        sections=(f"Reasons for refusal:\n{reasons}",),
        columns=columns(
            "expectation", "severity", "result", Column("unexpected_rows", "unexpected rows"), "detail"
        ),
        rows=tuple(
            (e.name, e.severity, "pass" if e.success else "FAIL", e.unexpected_count, e.detail)
            for e in report.failed
        ),
        caption=f"Quarantine: {report.quarantine_uri or 'none'}; "
        f"Data Docs: {report.data_docs_uri or 'not built'}",
    )


def expectations_table(report: ValidationReport) -> ReportTable:
    """Every expectation of the suite on the partition, passed or not, with GX's own count."""
    return ReportTable(
        title=f"Expectations of {report.suite} on {report.partition_date}",
        columns=columns(
            "expectation",
            "severity",
            "success",
            Column("unexpected_rows", "unexpected rows"),
            Column("gx_unexpected", "GX unexpected"),
            "detail",
        ),
        rows=tuple(
            (e.name, e.severity, e.success, e.unexpected_count, e.gx_unexpected_count, e.detail)
            for e in report.expectations
        ),
    )


def promotion_table(decision: PromotionDecision) -> ReportTable:
    """Why `@champion` moved or did not: the verdict, every gate, the reason and who decided."""
    champion = f"v{decision.champion_version}" if decision.champion_version else "none"
    champion_metrics = decision.champion_metrics or {}
    metric_rows = [
        [
            metric,
            f"{decision.challenger_metrics.get(metric, float('nan')):.4f}",
            f"{champion_metrics[metric]:.4f}" if metric in champion_metrics else "-",
        ]
        for metric in sorted(set(decision.challenger_metrics) | set(champion_metrics))
    ]
    return ReportTable(
        title=f"Promotion decision: {decision.verdict.upper()} {decision.model_name} "
        f"v{decision.challenger_version} (champion before: {champion})",
        sections=(
            f"Evaluated on {decision.evaluation}.",
            markdown_table(["metric", "challenger", "champion"], metric_rows),
        ),
        columns=columns("gate", "result", "detail"),
        rows=tuple((c.name, "pass" if c.passed else "FAIL", c.detail) for c in decision.checks),
        caption=f"Reason: {decision.reason} ({decision.mode}; {decision.decided_by}; {decision.decided_at})"
        + (f" Model card: {decision.model_card}" if decision.model_card else ""),
    )


def scoring_table(manifests: list[ScoringManifest]) -> ReportTable:
    """One row per scored partition: rows in, scored, quarantined, throughput, version, output."""
    first = manifests[0] if manifests else None
    versions = ", ".join(f"v{v}" for v in dict.fromkeys(m.model_version for m in manifests))
    return ReportTable(
        title=f"Batch scoring with {first.model_name} {versions}" if first else "Batch scoring",
        columns=columns(
            "date",
            "role",
            Column("rows_in", "rows in"),
            Column("rows_scored", "scored"),
            Column("rows_quarantined", "quarantined"),
            Column("rows_per_s", "rows/s"),
            Column("model_version", "model version"),
            "status",
            Column("output_uri", "output", in_terminal=False),
        ),
        rows=tuple(
            (
                m.partition_date,
                m.role,
                m.rows_in,
                m.rows_scored,
                m.rows_quarantined,
                round(m.rows_per_second),
                m.model_version,
                "already scored (no-op)" if m.reused else "scored",
                m.output_uri,
            )
            for m in manifests
        ),
        caption=f"Output under {catalog.any_version_and_day(first.output_uri)}" if first else "",
    )


def training_table(
    ref: ModelVersionRef, metrics: dict[str, float], window: str, train_rows: int, holdout_rows: int
) -> ReportTable:
    """The registered version, its training window and its held-out metrics."""
    return ReportTable(
        title=f"Trained {ref.name} version {ref.version} (@{ref.alias})",
        sections=(f"Window {window}: {train_rows} training rows, {holdout_rows} held-out rows.",),
        columns=columns(Column("metric", "holdout metric"), "value"),
        rows=tuple((name, f"{value:.4f}") for name, value in metrics.items()),
        caption=f"MLflow run {ref.run_id}; model URI {ref.uri}",
    )


def drift_table(report: MonitoringReport, online: bool = False) -> ReportTable:
    """One row per monitored feature; DRIFT marks the flagged ones. `online`: of the rows the
    online endpoint scored (the report's online section) instead of the batch predictions."""
    source = report.online if online else report
    what = f"{report.day}'s online rows" if online else report.day
    if len(source.drift_partitions) > 1:  # pooled: a small partition with the ones before it
        first, last = source.drift_partitions[0], source.drift_partitions[-1]
        what += f" pooled over {first}..{last} ({source.drift_rows} rows)"
    return ReportTable(
        title=f"Drift of {what} vs {report.model_name} v{source.scored_by}'s training data",
        columns=columns("feature", "kind", "psi", "ks", Column("unseen_share", "unseen share"), "flagged"),
        rows=tuple(
            (
                d.feature,
                d.kind,
                round(d.psi, 4),
                None if d.ks is None else round(d.ks, 4),
                d.unseen_share,
                "DRIFT" if d.flagged else "",
            )
            for d in source.drift
        ),
    )


def retrain_verdict(decision: RetrainDecision) -> str:
    """`retrain`, `none` or `suppressed: <why>`."""
    return decision.action + (f": {decision.suppressed_because}" if decision.suppressed_because else "")


def monitoring_table(
    report: MonitoringReport, decision: RetrainDecision, report_uri: str, chart_uri: str | None = None
) -> ReportTable:
    """A monitored day: drift verdict, breaches, the retrain verdict, then performance by scope."""
    psi = report.prediction_psi if report.prediction_psi is not None else "n/a"
    snapshots = (("day", report.day_performance), ("rolling", report.rolling_performance))
    online = report.online
    if online:  # the online endpoint's rows, measured on their own (tasks/monitoring/online.py)
        snapshots += (("online day", online.day_performance), ("online rolling", online.rolling_performance))
    chart = f"Chart of the recent history: {chart_uri}. " if chart_uri else ""
    return ReportTable(
        title=f"Monitoring {report.model_name} v{report.model_version}, {report.day}",
        sections=(
            f"Drift: {report.drift_verdict}; drifted features: "
            f"{', '.join(report.drifted_features) or 'none'}; prediction PSI {psi}.",
            *([online_summary(online)] if online else []),
            f"Breaches: {'; '.join(report.breaches) or 'none'}",
            *([f"Hindsight: {report.hindsight.describe()}"] if report.hindsight else []),
            f"**Retrain verdict: {retrain_verdict(decision)}**",
        ),
        columns=columns(
            "scope",
            Column("event_days", "event days"),
            "model",
            Column("labelled_rows", "labelled rows"),
            "metrics",
        ),
        rows=tuple(
            (
                scope,
                f"{s.first_event_day}..{s.last_event_day}",
                f"v{s.model_version}",
                s.labelled_rows,
                ", ".join(f"{k} {v:.3f}" for k, v in s.metrics.items()),
            )
            for scope, s in snapshots
            if s
        ),
        caption=f"{chart}History in {report_uri} and the MLflow experiment of monitoring metrics.",
    )


def online_summary(online: OnlineMonitoring) -> str:
    """The online traffic's line of a monitored day: rows by version, then drift as for batch."""
    versions = ", ".join(f"v{version} {rows}" for version, rows in online.rows_by_version.items())
    psi = "n/a" if online.prediction_psi is None else f"{online.prediction_psi:.4f}"
    return (
        f"Online: {online.rows_scored} rows ({versions or 'none'}); drift: {online.drift_verdict or 'n/a'}; "
        f"drifted features: {', '.join(online.drifted_features) or 'none'}; prediction PSI {psi}."
    )


def import_table(summary: ImportSummary) -> ReportTable:
    """Rows read, written and quarantined (with each reason), and where they went."""
    unit = f"{summary.partition}s"
    days = f"{summary.days} {unit}, {summary.first_day}..{summary.last_day}" if summary.days else f"no {unit}"
    return ReportTable(
        title=f"Import into {summary.dataset} ({days})",
        columns=columns("rows", "count", "where"),
        rows=(
            ("in", summary.rows_in, summary.source_uri),
            ("written", summary.rows_written, f"{summary.features_uri}, {summary.labels_uri}"),
            ("quarantined", summary.rows_quarantined, summary.quarantine_uri or ""),
            *((f"  {reason}", rows, "") for reason, rows in summary.reasons.items()),
        ),
    )


def replay_table(summary: ReplaySummary) -> ReportTable:
    """The day-by-day record of a replay or demo, then the prequential comparison."""
    loop, static = summary.loop, summary.static
    return ReportTable(
        title=f"{summary.dataset} replay {summary.start}..{summary.end}",
        columns=columns(
            "day",
            "champion",
            "scored",
            "quarantined",
            "labelled",
            "accuracy",
            Column("roc_auc", "ROC AUC"),
            "drift",
            "retrain",
        ),
        rows=tuple(
            (
                day.day,
                f"v{day.champion_version}",
                "REFUSED" if day.refused else day.rows_scored,
                day.rows_quarantined,
                day.labelled_rows,
                _maybe(day.accuracy),
                _maybe(day.roc_auc),
                ", ".join(day.drifted),
                day.retrain,
            )
            for day in summary.days
        ),
        caption=f"prequential accuracy: loop {_maybe(loop.get('accuracy'))} vs static "
        f"{_maybe(static.get('accuracy'))}; ROC AUC: loop {_maybe(loop.get('roc_auc'))} vs "
        f"static {_maybe(static.get('roc_auc'))}; {summary.retrains} retrain(s), "
        f"{summary.promotions} promotion(s); table: {summary.table_uri}",
    )


SHOWN_METRICS = {"accuracy": "accuracy", "roc_auc": "ROC AUC", "balanced_accuracy": "balanced accuracy"}


def widened_to(rows: int) -> str:
    return f" or more, to {rows:,} rows" if rows else ""


def comparison_table(comparison: PolicyComparison) -> ReportTable:
    """The loop against its baselines on the same rows: metrics, retrains, promotions, compute;
    the verdict is the caption."""
    metrics = dict(SHOWN_METRICS)
    metrics.setdefault(comparison.monitor_metric, comparison.monitor_metric.replace("_", " "))
    rows = comparison.policies[0].rows if comparison.policies else 0
    saved = ", ".join(f"{what}: {uri}" for what, uri in comparison.saved_to.items())
    return ReportTable(
        title=f"{comparison.dataset} replay {comparison.start}..{comparison.end}: the loop against "
        f"its baselines on the same {rows} labelled rows (labels {comparison.label_delay_days} "
        f"{comparison.partition}(s) late, models trained on {comparison.train_window_days} "
        f"{comparison.partition}s{widened_to(comparison.train_window_rows)})",
        columns=columns(
            "policy",
            "rows",
            *(Column(metric, label) for metric, label in metrics.items()),
            "retrains",
            "promotions",
            Column("compute_seconds", "compute s"),
            Column("hindsight", "promotions in hindsight"),
            Column("rejections", "rejected challengers in hindsight"),
        ),
        rows=tuple(
            (
                p.policy,
                p.rows,
                *(_maybe(p.metrics.get(metric)) for metric in metrics),
                p.retrains,
                p.promotions,
                f"{p.compute_seconds:.1f}",
                p.hindsight,
                p.rejections,
            )
            for p in comparison.policies
        ),
        caption=f"{comparison.verdict}" + (f" Saved: {saved}" if saved else ""),
    )


def comparison_over_time_table(comparison: PolicyComparison) -> ReportTable:
    """The monitored metric per period (rows) and policy (columns); the verdict is the title."""
    policies = list(dict.fromkeys(point["policy"] for point in comparison.over_time))
    periods: dict[str, dict] = {}
    for point in comparison.over_time:
        period = periods.setdefault(point["period"], {"rows": point["rows"]})
        period[point["policy"]] = point["value"]
    chart = comparison.saved_to.get("chart")
    return ReportTable(
        title=comparison.verdict,
        columns=columns("period", "rows", *policies),
        rows=tuple(
            (period, values["rows"], *(_maybe(values.get(policy)) for policy in policies))
            for period, values in periods.items()
        ),
        caption=f"{comparison.monitor_metric} by period, each policy on the same rows. "
        + (f"Chart: {chart}" if chart else "No chart (no period was measured)."),
    )


def recent_runs_table(runs: list) -> ReportTable:
    """The latest flow runs (Prefect's `FlowRun`s), newest first."""
    return ReportTable(
        title=f"Latest {len(runs)} flow runs",
        columns=columns(Column("flow_run", "flow run"), "state", "started"),
        rows=tuple((run.name, run.state_name or "", str(run.start_time or "")) for run in runs),
    )


def _maybe(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
