"""The `inferloop` command line. Heavy libraries are imported inside commands so --help is fast."""

from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from inferloop.cli_tables import promotion_summary, recent_runs_table, scoring_table, validation_table
from inferloop.errors import InferloopError

app = typer.Typer(
    help="inferloop: data gate, registry, batch inference and retraining.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Generate or import data into the lake.", no_args_is_help=True)
app.add_typer(data_app, name="data")
expectations_app = typer.Typer(help="The data-quality gate's GX suites.", no_args_is_help=True)
app.add_typer(expectations_app, name="expectations")
console = Console()

DateOption = Annotated[date | None, typer.Option(formats=["%Y-%m-%d"])]


def _settings():
    from inferloop.settings import load_settings

    return load_settings()


def _fail(error: Exception) -> None:
    console.print(f"[bold red]error:[/] {error}")
    raise typer.Exit(1)


def run_cli_command(fn):
    """Run a command body; known errors print their message (no traceback) and exit 1."""
    try:
        return fn()
    except InferloopError as error:
        _fail(error)


@data_app.command("generate")
def data_generate(
    scenario: Annotated[
        str, typer.Option(help="stable | covariate_drift | concept_drift | quality_faults")
    ] = "stable",
    days: int = 14,
    rows_per_day: int = 5_000,
    start: DateOption = None,
    seed: int = 7,
    change_day: Annotated[int | None, typer.Option(help="First drifted day index")] = None,
):
    """Write the synthetic card-transaction feed (features by day, labels by arrival day)."""

    def body():
        from inferloop.storage import lake_storage
        from inferloop.synthetic import GeneratorConfig
        from tasks.data import write_synthetic_feed

        settings = _settings()
        try:
            config = GeneratorConfig(
                scenario=scenario,
                days=days,
                rows_per_day=rows_per_day,
                seed=seed,
                change_day=change_day,
                **({"start": start} if start else {}),
            )
        except ValueError as error:
            raise InferloopError(str(error)) from None
        storage = lake_storage(settings)
        written = write_synthetic_feed.fn(storage, settings.dataset, config)
        console.print(
            f"Wrote {len(written)} days ({written[0]}..{written[-1]}) of "
            f"'{scenario}' x {rows_per_day} rows to {storage.uri(settings.dataset.name)}"
        )

    run_cli_command(body)


def _date_range(text: str) -> tuple[date, date]:
    try:
        first, _, last = text.partition("..")
        return date.fromisoformat(first), date.fromisoformat(last or first)
    except ValueError:
        raise InferloopError(f"Expected a date range like 2026-01-01..2026-01-07, got {text!r}") from None


@expectations_app.command("suggest")
def expectations_suggest(
    window: Annotated[str, typer.Option("--from", help="Reference window D1..D2")],
):
    """Propose training and inference suites from a reference window, for review and commit."""

    def body():
        from inferloop.storage import lake_storage
        from tasks.suggest import propose_suites

        settings = _settings()
        start, end = _date_range(window)
        for path in propose_suites(lake_storage(settings), settings.dataset, start, end, settings):
            console.print(f"Proposed {path}")
        console.print("Review with `git diff expectations/` and commit: flows use the committed suites.")

    run_cli_command(body)


@app.command()
def validate(
    date_: Annotated[date, typer.Option("--date", formats=["%Y-%m-%d"], help="Partition")],
    purpose: Annotated[str, typer.Option(help="inference | training")] = "inference",
):
    """Run the data-quality gate alone on one partition."""

    def body():
        from flows.validate import validate as validate_flow

        report = validate_flow(partition_date=date_, purpose=purpose)
        console.print(validation_table(report))
        if report.refused:
            _fail(InferloopError("Refused: " + "; ".join(report.reasons)))

    run_cli_command(body)


@app.command()
def train(start: DateOption = None, end: DateOption = None):
    """Train on a labelled window and register a model version in MLflow."""

    def body():
        from flows.train import train as train_flow

        ref = train_flow(start=start, end=end)
        console.print(f"[green]Registered[/] {ref.name} v{ref.version} as @{ref.alias} (run {ref.run_id})")

    run_cli_command(body)


@app.command()
def promote(
    version: Annotated[
        str | None, typer.Option(help="Promote this version by hand (safety checks only)")
    ] = None,
    start: DateOption = None,
    end: DateOption = None,
    mode: Annotated[
        str | None, typer.Option(help="auto | approve (default: INFERLOOP_PROMOTION_MODE)")
    ] = None,
):
    """Promote @challenger if it beats @champion on recent labelled data, or --version N by hand."""

    def body():
        from flows.promote import promote as promote_flow
        from tasks.promotion import decided_by_person

        if version:
            decision = promote_flow(challenger_version=version, mode="manual", decided_by=decided_by_person())
        else:
            decision = promote_flow(start=start, end=end, mode=mode)
        console.print(promotion_summary(decision))

    run_cli_command(body)


@app.command()
def rollback():
    """Restore @previous_champion as @champion."""

    def body():
        from flows.promote import rollback as rollback_flow
        from tasks.promotion import decided_by_person

        console.print(promotion_summary(rollback_flow(decided_by=decided_by_person())))

    run_cli_command(body)


@app.command()
def infer(
    date_: Annotated[
        date | None,
        typer.Option("--date", "--from", formats=["%Y-%m-%d"], help="First partition (default: yesterday)"),
    ] = None,
    to: DateOption = None,
    runner: Annotated[str | None, typer.Option(help="thread | dask (default: INFERLOOP_TASK_RUNNER)")] = None,
    dask_address: Annotated[str | None, typer.Option(help="Existing Dask scheduler, tcp://host:port")] = None,
    shadow: Annotated[bool, typer.Option(help="Also score with @challenger (written as shadow)")] = False,
):
    """Score one day, or backfill --from D1 --to D2, with the @champion model."""

    def body():
        from flows.batch_inference import batch_inference
        from inferloop.runners import configured_task_runner
        from inferloop.settings import load_settings

        settings = load_settings(task_runner=runner, dask_address=dask_address)
        scoring = batch_inference.with_options(task_runner=configured_task_runner(settings))
        with console.status("Scoring partitions..."):
            manifests = scoring(partition_date=date_, end_date=to, shadow=shadow)
        console.print(scoring_table(manifests))

    run_cli_command(body)


@app.command()
def status():
    """The stack's services, the champion model and the latest flow runs."""

    def body():
        from inferloop.stack import stack_status
        from tasks.registry import find_alias

        settings = _settings()
        services = Table(title="Local stack")
        services.add_column("service")
        services.add_column("state")
        for name, state in stack_status(settings).items():
            services.add_row(name, state)
        console.print(services)
        for alias in (settings.champion_alias, settings.challenger_alias):
            ref = find_alias(settings, alias)
            shown = f"version {ref.version} (run {ref.run_id})" if ref else "none"
            console.print(f"{settings.registered_model_name}@{alias}: {shown}")
        console.print(recent_runs_table())

    run_cli_command(body)


@app.command()
def demo(days: int = 14, rows_per_day: int = 5_000):
    """The loop end to end: generate data, train on the first half, score the second half."""

    def body():
        from flows.demo import loop_demo

        summary = loop_demo(days=days, rows_per_day=rows_per_day)
        console.print(scoring_table(summary.manifests))
        console.print(
            f"\nChampion: {summary.champion.name} v{summary.champion.version} "
            f"(holdout ROC AUC {summary.champion_roc_auc:.3f})"
        )
        console.print(f"Predictions: {summary.predictions_uri}")
        console.print(f"MLflow store: {summary.tracking_uri}  (UI: make up, then http://127.0.0.1:5000)")
        console.print("Prefect runs: make up, then http://127.0.0.1:4200")

    run_cli_command(body)


@app.command()
def up(worker: Annotated[bool, typer.Option(help="Also deploy flows and start a worker")] = True):
    """Start Prefect, MLflow and S3 on loopback in the background; deploy flows; start a worker."""

    def body():
        from inferloop.stack import stack_env, start_stack

        settings = _settings()
        console.print("Starting the local stack (first start takes about 30 s)...")
        for service in start_stack(settings, with_worker=worker):
            console.print(f"  {service.name:8} {service.ui_url}")
        console.print(f"Point the CLI at it: source {settings.state_dir}/stack/stack.env")
        console.print(
            "  "
            + "  ".join(
                f"{k}={v}"
                for k, v in stack_env(settings).items()
                if k.startswith(("PREFECT", "INFERLOOP_TRACKING"))
            )
        )

    run_cli_command(body)


@app.command()
def down():
    """Stop the services `inferloop up` started (and nothing else)."""

    def body():
        from inferloop.stack import stop_stack

        stopped = stop_stack(_settings())
        console.print(f"Stopped: {', '.join(stopped) if stopped else 'nothing was running'}")

    run_cli_command(body)


@app.command()
def deploy():
    """Register every deployment of prefect.yaml with the running Prefect server."""

    def body():
        from inferloop.stack import deploy as deploy_all

        deploy_all(_settings())
        console.print("Deployments registered: see http://127.0.0.1:4200/deployments")

    run_cli_command(body)
