"""The `inferloop` command line. Heavy libraries are imported inside commands so --help is fast."""

import contextlib
import gc
import os
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Literal

from inferloop.core.offline import check_state_dir, prepare_process
from inferloop.runtime.debris import mark_children, sweep

prepare_process()  # the CLI is an entry point: before typer, rich or anything heavy is imported

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferloop.cli.tables import rich_table
from inferloop.core import catalog
from inferloop.core.errors import InferloopError
from inferloop.runtime.terminal_logs import VERBOSE

app = typer.Typer(
    help="inferloop: data gate, registry, batch inference and retraining.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Generate or import data into the lake.", no_args_is_help=True)
app.add_typer(data_app, name="data")
expectations_app = typer.Typer(help="The data-quality gate's GX suites.", no_args_is_help=True)
app.add_typer(expectations_app, name="expectations")
serve_app = typer.Typer(help="The online endpoint: scores rows with @champion over HTTP.")
app.add_typer(serve_app, name="serve")
serve_keys_app = typer.Typer(help="API keys of the online endpoint.", no_args_is_help=True)
serve_app.add_typer(serve_keys_app, name="keys")
# Logs and CI are not terminals: rich would wrap tables at 80 columns there.
console = Console(width=None if sys.stdout.isatty() else 160)
warnings_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also show Prefect's run logs and the libraries' messages")
    ] = False,
):
    """inferloop: data gate, registry, batch inference and retraining."""
    if verbose:
        os.environ[VERBOSE] = "1"


def _partition_key(text: str) -> date:
    """A partition as a user gives it: any day in it, or an hour of an hourly feed."""
    from inferloop.core.periods import parse_key

    try:
        return parse_key(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a day (2026-03-01) or an hour (2026-03-01T07)") from None


PARTITION = {"parser": _partition_key, "metavar": "DAY"}  # a day, or an hour of an hourly feed
DateOption = Annotated[date | None, typer.Option(**PARTITION)]
YesterdayOption = Annotated[
    date | None,
    typer.Option("--date", **PARTITION, help="Default: the previous partition (yesterday)"),
]


def _settings(**overrides):
    from inferloop.core.settings import load_settings

    return load_settings(**overrides)


# A long history has one file schema: GX validates it once, row checks cover every row.
GxScopeOption = Annotated[
    str,
    typer.Option(
        envvar="INFERLOOP_GX_SCOPE",
        help="partition: GX validates every partition; schema: once per file schema (default here)",
    ),
]


def _require_partitions(first: date, last: date | None, hint: str, settings=None) -> None:
    """Days the lake does not hold fail here, in a second, rather than once a flow (and its
    temporary Prefect API) has started to find the same."""
    from inferloop.core.storage import lake_storage
    from inferloop.tasks.data.feeds import stored_partitions_in

    settings = settings or _settings()
    spec = settings.dataset
    first, last = spec.partitioning.floor(first), spec.partitioning.floor(last or first)
    stored_partitions_in(lake_storage(settings.lake), spec, first, last, hint)


def _fail(error: Exception) -> None:
    # The message is data, not rich markup (markup would eat "[ns, UTC]" of datetime64[ns, UTC]),
    # and one line however long: a terminal wraps it, a log keeps it whole.
    console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
    raise typer.Exit(1)


def _instant(day: date) -> datetime:
    """A day as its midnight, an hour as itself: the two compare."""
    return day if isinstance(day, datetime) else datetime.combine(day, time())


def _ordered(first: date | None, last: date | None, options: str = "--from/--to") -> None:
    """Refuse a reversed date range before any flow (and its Prefect server) starts."""
    if first is not None and last is not None and _instant(last) < _instant(first):
        raise InferloopError(
            f"Date range is empty: {first} is after {last}; give the earlier day first ({options})"
        )


# Commands that run flows (they call the Prefect API), and those that call the MLflow registry.
MLFLOW_COMMANDS = {"train", "promote", "rollback", "infer", "monitor", "retrain", "replay", "demo"}
PREFECT_COMMANDS = MLFLOW_COMMANDS | {"validate", "deploy", "retention"}


def _check_settings(command: str) -> None:
    """Every knob the environment sets, validated (SettingsError names the variable); and the
    servers `command` will call answer (ServiceUnreachable names the one that does not)."""
    from inferloop.core.dataset import DatasetSpecError
    from inferloop.runtime.reachability import check_prefect_api, check_tracking_server

    settings = None
    # A bad spec is left to the commands that read it: `--spec` may name another one.
    with contextlib.suppress(DatasetSpecError):
        settings = _settings()
    if command in PREFECT_COMMANDS:
        check_prefect_api(os.environ)
    if command in MLFLOW_COMMANDS and settings is not None:
        check_tracking_server(settings.registry)


def _warn_about_unknown_settings() -> None:
    from inferloop.core.settings import unknown_settings

    for warning in unknown_settings(os.environ):
        warnings_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


def run_cli_command(fn, alongside=contextlib.nullcontext):
    """Run a command body; known errors print their message (no traceback) and exit 1.
    `alongside`, a context manager, is entered once the settings are checked and left when the
    body is done: work beside the imports that follow (the infer command's GX process)."""
    from inferloop.runtime.terminal_logs import configure_terminal, verbose_requested

    try:
        _warn_about_unknown_settings()
        # Before Prefect is imported (it warns about a home it cannot create) and before a flow
        # starts its temporary API: a bad state dir or setting fails in a second, naming it.
        state_dir = check_state_dir()
        # What a command killed with kill -9 left (its temporary Prefect API, its GX copy).
        sweep(Path(os.environ.get("INFERLOOP_GX_RUNTIME_DIR", state_dir / "gx")))
        mark_children()
        # The command is the function that defined `fn` (its body): `infer.<locals>.body`.
        _check_settings(fn.__qualname__.split(".")[0])
        with alongside():
            configure_terminal(verbose=verbose_requested())
            return fn()
    except InferloopError as error:
        _fail(error)
    finally:
        # The command is done: what is alive now lives until exit. Without this, interpreter
        # exit runs a full collection over every imported module's objects (~1 s of `infer`).
        gc.freeze()


@data_app.command("generate")
def data_generate(
    scenario: Annotated[
        str, typer.Option(help="stable | covariate_drift | concept_drift | quality_faults")
    ] = "stable",
    days: int = 14,
    rows_per_day: int = 5_000,
    start: Annotated[date | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    seed: int = 7,
    change_day: Annotated[int | None, typer.Option(help="First drifted day index")] = None,
):
    """Write the synthetic card-transaction feed (features by day, labels by arrival day)."""

    def body():
        from inferloop.core.storage import lake_storage
        from inferloop.tasks.data.feeds import write_synthetic_feed
        from inferloop.tasks.data.synthetic import GeneratorConfig

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
            raise InferloopError(str(error)) from error
        storage = lake_storage(settings.lake)
        written = write_synthetic_feed.fn(storage, settings.dataset, config)
        features_uri = storage.uri(catalog.features_table(settings.dataset.name))
        console.print(
            f"Wrote {len(written)} days ({written[0]}..{written[-1]}) of "
            f"'{scenario}' x {rows_per_day} rows to {features_uri}"
        )

    run_cli_command(body)


@data_app.command("import")
def data_import(
    source: Annotated[str, typer.Option(help="CSV or parquet file: a local path or s3://bucket/key")],
    spec: Annotated[
        str | None, typer.Option(help="Dataset spec YAML (default: INFERLOOP_DATASET_SPEC)")
    ] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter (default: detected)")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of a CSV")] = "utf-8",
):
    """Import a CSV or parquet file as its dataset spec describes: features by event day, labels
    by arrival day, bad rows quarantined with their reasons."""

    def body():
        from inferloop.core.personal_data import Pseudonymiser
        from inferloop.core.settings import load_settings
        from inferloop.core.storage import lake_storage
        from inferloop.tasks.data.importing import import_source
        from inferloop.tasks.report_tables import import_table

        settings = load_settings(dataset_spec=spec)
        personal = Pseudonymiser.for_spec(settings.dataset, settings.gate)
        summary = import_source.fn(
            lake_storage(settings.lake), settings.dataset, source, delimiter, encoding, personal
        )
        console.print(rich_table(import_table(summary)))
        if not summary.rows_written:
            raise InferloopError(f"No row was imported: see the reasons above and {summary.quarantine_uri}")
        if spec:
            console.print(f"The other commands read this dataset with INFERLOOP_DATASET_SPEC={spec}")

    run_cli_command(body)


def _date_range(text: str) -> tuple[date, date]:
    from inferloop.core.periods import parse_key

    try:
        first, _, last = text.partition("..")
        start, end = parse_key(first), parse_key(last or first)
    except ValueError as error:
        raise InferloopError(
            "Expected a range of days like 2026-01-01..2026-01-07 (or of hours of an hourly feed, "
            f"2026-01-01T00..2026-01-07T23), got {text!r}"
        ) from error
    _ordered(start, end, "--from D1..D2")
    return start, end


@expectations_app.command("suggest")
def expectations_suggest(
    window: Annotated[str, typer.Option("--from", help="Reference window D1..D2")],
):
    """Propose training and inference suites from a reference window, for review and commit."""

    def body():
        from inferloop.core.storage import lake_storage
        from inferloop.tasks.gate.suggest import propose_suites

        settings = _settings()
        start, end = _date_range(window)
        proposal = propose_suites(lake_storage(settings.lake), settings.dataset, start, end, settings)
        for path in proposal.paths:
            console.print(f"Proposed {path}")
        console.print("To review (each rule's note is in the suite; see expectations/README.md):")
        for point in proposal.review:
            console.print(f"- {point}", markup=False)
        console.print("Review with `git diff expectations/` and commit: flows use the committed suites.")

    run_cli_command(body)


@app.command()
def validate(
    date_: Annotated[date, typer.Option("--date", **PARTITION, help="Partition")],
    # A choice: any other word would start a flow only to look for a suite of that name.
    purpose: Annotated[
        Literal["inference", "training"], typer.Option(help="The suite applied")
    ] = "inference",
):
    """Run the data-quality gate alone on one partition."""

    def body():
        _require_partitions(date_, None, "validate a partition the lake holds, or import it")
        from inferloop.flows.validate import validate as validate_flow
        from inferloop.tasks.report_tables import validation_table

        report = validate_flow(partition_date=date_, purpose=purpose)
        console.print(rich_table(validation_table(report)))
        if report.refused:
            _fail(InferloopError("Refused: " + "; ".join(report.reasons)))

    run_cli_command(body)


@app.command()
def train(start: DateOption = None, end: DateOption = None):
    """Train on a labelled window and register a model version in MLflow."""

    def body():
        _ordered(start, end, "--start/--end")
        from inferloop.core.dataset import load_dataset_spec

        # A bad dataset spec fails here, before a flow (or its temporary Prefect API) starts.
        load_dataset_spec(_settings().project.dataset_spec)
        from inferloop.flows.train import train as train_flow

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
    # A choice: a misspelt "approve" would otherwise run as auto and move @champion unasked.
    mode: Annotated[
        Literal["auto", "approve"] | None, typer.Option(help="Default: INFERLOOP_PROMOTION_MODE")
    ] = None,
):
    """Promote @challenger if it beats @champion on recent labelled data, or --version N by hand."""

    def body():
        from inferloop.tasks.promotion.decision import decided_by_person, get_version

        _ordered(start, end, "--start/--end")
        if version:
            get_version(_settings(), version)  # an unknown version fails before a flow starts
        from inferloop.flows.promote import promote as promote_flow
        from inferloop.tasks.report_tables import promotion_table

        if version:
            decision = promote_flow(challenger_version=version, mode="manual", decided_by=decided_by_person())
        else:
            decision = promote_flow(start=start, end=end, mode=mode)
        console.print(rich_table(promotion_table(decision)))

    run_cli_command(body)


@app.command()
def rollback():
    """Restore @previous_champion as @champion."""

    def body():
        from inferloop.tasks.promotion.decision import decided_by_person, rollback_target

        rollback_target(_settings())  # nothing to roll back to fails before a flow starts
        from inferloop.flows.promote import rollback as rollback_flow
        from inferloop.tasks.report_tables import promotion_table

        console.print(rich_table(promotion_table(rollback_flow(decided_by=decided_by_person()))))

    run_cli_command(body)


@app.command()
def unlock(
    name: Annotated[str, typer.Argument(help="The lock an error named, e.g. inferloop-promotion")],
):
    """Free a lock whose holder is gone (a killed promote or retrain); the error that named
    the lock says who held it."""

    def body():
        from inferloop.runtime.locks import free_lock, lock_holder

        holder = lock_holder(name)
        free_lock(name)
        held = f" (held by pid {holder['pid']} on {holder['host']} since {holder['since']})" if holder else ""
        console.print(f"Freed the lock '{name}'{held}", markup=False)

    run_cli_command(body)


@app.command()
def infer(
    date_: Annotated[
        date | None,
        typer.Option("--date", "--from", **PARTITION, help="First partition (default: the previous one)"),
    ] = None,
    to: DateOption = None,
    runner: Annotated[str | None, typer.Option(help="thread | dask (default: INFERLOOP_TASK_RUNNER)")] = None,
    dask_address: Annotated[str | None, typer.Option(help="Existing Dask scheduler, tcp://host:port")] = None,
    shadow: Annotated[bool, typer.Option(help="Also score with @challenger (written as shadow)")] = False,
):
    """Score one day, or backfill --from D1 --to D2, with the @champion model."""

    def body():
        from inferloop.core.settings import load_settings
        from inferloop.runtime.reachability import check_dask_scheduler

        _ordered(date_, to)
        given = {"task_runner": runner, "dask_address": dask_address}
        overrides = {name: value for name, value in given.items() if value is not None}
        settings = load_settings(**overrides)
        check_dask_scheduler(settings.runner)  # in seconds, before Prefect and Dask are imported
        if date_ is not None:
            _require_partitions(date_, to, "score partitions the lake holds, or import them", settings)
        from inferloop.runtime.temporary_api import EarlyTemporaryApi

        api = EarlyTemporaryApi()  # on embedded defaults it boots while the scoring stack imports

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from inferloop.flows.batch_inference import batch_inference
        from inferloop.runtime.runners import configured_task_runner
        from inferloop.tasks.report_tables import scoring_table
        from inferloop.tasks.reports import listening_to_progress

        api.ready()
        scoring = batch_inference.with_options(task_runner=configured_task_runner(settings))
        columns = (TextColumn("Scoring partitions"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            partitions = bar.add_task("partitions", total=None)  # the flow knows how many

            def advance(done: int, total: int) -> None:
                bar.update(partitions, completed=done, total=total)

            with listening_to_progress(advance):
                manifests = scoring(
                    partition_date=date_, end_date=to, shadow=shadow, overrides=overrides or None
                )
        console.print(rich_table(scoring_table(manifests)))

    # Here, before Prefect (run_cli_command imports it), for a version scored by scikit-learn
    # (a compiled one loads neither, and this costs it 0.09 s): loading its pipeline imports
    # skops, which finds each scipy ufunc's module by asking every module imported before
    # scipy's, in import order. After Prefect and its dependencies (dozens
    # of modules with a lazy __getattr__, where each miss runs Python code) that scan was ~60 %
    # of the skops import (`-X importtime` at a load of 9: 10.4 s of its 17.3 s; 3.4 s after this).
    import scipy.special  # noqa: F401

    def gx_alongside():
        """The gate's GX imports in a helper process meanwhile, on another core (2 s of this
        command); not for Dask workers, which gate in their own processes."""
        from inferloop.core.settings import load_settings
        from inferloop.tasks.gate.gx_runs import gx_helper

        chosen = runner or load_settings().runner.task_runner  # settings checked just before
        return gx_helper() if chosen == "thread" else contextlib.nullcontext()

    run_cli_command(body, alongside=gx_alongside)


@app.command()
def monitor(
    date_: YesterdayOption = None,
):
    """Drift and delayed-label performance of the champion for one day; retrains when confirmed."""

    def body():
        from inferloop.flows.monitor import monitor as monitor_flow

        decision = monitor_flow(day=date_, retrain_inline=True)
        console.print(f"retrain verdict: {decision.action} {decision.suppressed_because} {decision.outcome}")

    run_cli_command(body)


@app.command()
def retrain(
    date_: YesterdayOption = None,
    force: Annotated[
        bool, typer.Option(help="Retrain without a confirmed breach (storm guard still applies)")
    ] = False,
):
    """Retrain on the recent labelled days and run promotion, if the policy (or --force) allows."""

    def body():
        from inferloop.flows.retrain import retrain as retrain_flow

        decision = retrain_flow(day=date_, force=force)
        console.print(f"{decision.action}: {decision.suppressed_because or decision.outcome}")

    run_cli_command(body)


@app.command()
def replay(
    start: Annotated[
        date, typer.Option("--from", **PARTITION, help="First partition to score (any day in it)")
    ],
    end: Annotated[date, typer.Option("--to", **PARTITION, help="Last partition to score")],
    spec: Annotated[
        str | None, typer.Option(help="Dataset spec YAML (default: INFERLOOP_DATASET_SPEC)")
    ] = None,
    gx_scope: GxScopeOption = "schema",
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the comparison of the loop with its baselines here"),
    ] = None,
):
    """Run the loop day by day over history in the lake as if it were live; print the day-by-day
    table, then the loop against the first model kept and periodic retraining on the same rows
    (INFERLOOP_BASELINE_EVERY), with a verdict."""

    def body():
        _ordered(start, end)
        # Passed to every flow of the loop (replay -> train, monitor -> retrain -> promote).
        overrides = {"gx_scope": gx_scope} | ({"dataset_spec": spec} if spec else {})
        _settings(**overrides)  # fail early, naming the knob, before any flow starts
        from inferloop.flows.replay import replay as replay_flow
        from inferloop.tasks.monitoring.comparison_report import comparison_json
        from inferloop.tasks.report_tables import comparison_table, replay_table

        summary = replay_flow(start=start, end=end, overrides=overrides)
        console.print(rich_table(replay_table(summary)))
        console.print(rich_table(comparison_table(summary.comparison)))
        if json_path is not None:
            json_path.write_text(comparison_json(summary.comparison))
            console.print(f"Comparison written to {json_path}")

    run_cli_command(body)


@app.command()
def retention(
    dry_run: Annotated[bool, typer.Option(help="Only list what would be deleted")] = False,
    as_of: Annotated[
        date | None, typer.Option(formats=["%Y-%m-%d"], help="Count back from this day (default: today)")
    ] = None,
):
    """Delete lake partitions older than INFERLOOP_RETAIN_*_DAYS (features, predictions,
    quarantine, online predictions); labels, reports and decisions are never pruned."""

    def body():
        from datetime import UTC

        from inferloop.tasks.data.retention import check_retention

        check_retention(_settings())  # a bad retention fails before the flow starts
        from inferloop.flows.lake_retention import lake_retention
        from inferloop.tasks.data.retention import retention_table

        day = as_of or datetime.now(UTC).date()
        console.print(rich_table(retention_table(lake_retention(as_of=day, dry_run=dry_run))))

    run_cli_command(body)


@app.command()
def status():
    """The stack's services, the champion model and the latest flow runs."""

    def body():
        from inferloop.stack.control import stack_status, started_profile
        from inferloop.tasks.model.registry import find_alias
        from inferloop.tasks.report_tables import recent_runs_table
        from inferloop.tasks.reports import recent_flow_runs

        settings = _settings()
        services = Table(title=f"Stack ({started_profile(settings).stack.stack_profile} profile)")
        services.add_column("service")
        services.add_column("state")
        for name, state in stack_status(settings).items():
            services.add_row(name, state)
        console.print(services)
        for alias in (settings.registry.champion_alias, settings.registry.challenger_alias):
            ref = find_alias(settings.registry, alias)
            shown = f"version {ref.version} (run {ref.run_id})" if ref else "none"
            console.print(f"{settings.registry.model_name}@{alias}: {shown}")
        console.print(rich_table(recent_runs_table(recent_flow_runs(limit=10))))

    run_cli_command(body)


@app.command()
def demo(
    days: int = 21,
    rows_per_day: int = 5_000,
    scenario: str = "concept_drift",
    gx_scope: GxScopeOption = "schema",
):
    """The loop end to end: a feed whose fraud pattern changes halfway, scored, monitored,
    retrained and promoted day by day; prints the day-by-day table."""

    def body():
        from inferloop.flows.demo import loop_demo
        from inferloop.tasks.report_tables import replay_table

        overrides = {"gx_scope": gx_scope}
        settings = _settings(**overrides)
        summary = loop_demo(days=days, rows_per_day=rows_per_day, scenario=scenario, overrides=overrides)
        console.print(rich_table(replay_table(summary)))
        console.print(f"Lake (features, predictions, monitoring, quarantine): {settings.lake.storage_uri}")
        console.print(
            f"MLflow store: {settings.registry.tracking_uri}  (UI: make up, then http://127.0.0.1:5000)"
        )
        console.print("Prefect runs and artifacts: make up, then http://127.0.0.1:4200")

    run_cli_command(body)


@app.command()
def up(
    worker: Annotated[bool, typer.Option(help="Also deploy flows and start a worker")] = True,
    profile: Annotated[
        str | None,
        typer.Option(help="local (SQLite, local files) or prod (PostgreSQL, S3, Dask, auth)"),
    ] = None,
):
    """Start the stack on loopback in the background; deploy flows; start a worker."""

    def body():
        from inferloop.core.settings import load_settings
        from inferloop.serving.keys import first_key
        from inferloop.stack.control import start_stack
        from inferloop.stack.services import addresses, stack_env

        settings = load_settings(stack_profile=profile)
        console.print(f"Starting the {settings.stack.stack_profile} stack (first start takes about 30 s)...")
        keys_file = settings.serving.serve_keys_file
        serve_key = first_key(keys_file)
        try:
            for service in start_stack(settings, with_worker=worker):
                if service.ui_url:
                    console.print(f"  {service.name:14} {service.ui_url}")
        finally:  # its hash is all that is kept: shown now, even if a service failed to start
            if serve_key:
                console.print(
                    f"API key of the online endpoint (scopes score, admin), shown this once: {serve_key}\n"
                    f"  curl -H 'Authorization: Bearer <key>' {addresses(settings)['serve']}/invocations ...;"
                    f" more keys: inferloop serve keys add NAME --scope score (kept in {keys_file})"
                )
        stack = settings.state_dir / "stack"
        console.print(f"Point the CLI at it: source {stack}/stack.env")
        # Addresses only: the credentials stay in the 0600 files, never on a terminal or in a log.
        shown = ("PREFECT_API_URL", "INFERLOOP_TRACKING_URI")
        console.print("  " + "  ".join(f"{k}={v}" for k, v in stack_env(settings).items() if k in shown))
        if settings.stack.stack_profile == "prod":
            console.print(f"Credentials (log in to both UIs with them): {stack}/credentials.env")

    run_cli_command(body)


@app.command()
def down():
    """Stop the services `inferloop up` started (and nothing else)."""

    def body():
        from inferloop.stack.control import stop_stack

        stopped = stop_stack(_settings())
        console.print(f"Stopped: {', '.join(stopped) if stopped else 'nothing was running'}")

    run_cli_command(body)


@app.command()
def deploy():
    """Register every deployment of prefect.yaml with the running Prefect server."""

    def body():
        from inferloop.stack.control import deploy as deploy_all

        alerts = deploy_all(_settings())
        console.print("Deployments registered: see http://127.0.0.1:4200/deployments")
        for line in alerts.lines() if alerts else ["no alerts.yaml: no alerts applied"]:
            console.print(f"  {escape(line)}", soft_wrap=True)

    run_cli_command(body)


@app.command()
def alerts(
    check: Annotated[bool, typer.Option(help="Only check alerts.yaml; change nothing on the server")] = False,
):
    """Apply alerts.yaml (notification blocks and automations) to the Prefect server that
    PREFECT_API_URL names; `inferloop deploy` does this too. Webhook URLs come from the environment."""

    def body():
        from inferloop.stack.alerts import apply_alerts_file
        from inferloop.stack.alerts_config import ALERTS_FILE, load_alerts

        config = load_alerts(ALERTS_FILE)
        if check:
            console.print(
                f"{ALERTS_FILE.name}: {len(config.channels)} channels, {len(config.alerts)} alerts, valid"
            )
            return
        for line in apply_alerts_file(config, os.environ).lines():
            console.print(escape(line), soft_wrap=True)

    run_cli_command(body)


@serve_app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface (default: INFERLOOP_SERVE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: INFERLOOP_SERVE_PORT)")] = None,
):
    """Serve @champion online: POST /invocations (MLflow's formats) or /v2/models/NAME/infer (V2),
    /health/ready, /metrics, /docs; each API key rate-limited (INFERLOOP_SERVE_RATE_PER_SECOND)."""
    if ctx.invoked_subcommand is not None:
        return

    def body():
        from inferloop.serving.server import serve as serve_forever

        serve_forever(_settings(serve_host=host, serve_port=port))

    run_cli_command(body)


@serve_keys_app.command("add")
def serve_keys_add(
    name: Annotated[str, typer.Argument(help="Who or what uses the key")],
    scope: Annotated[
        list[str] | None, typer.Option(help="score (/invocations, /v2 infer) or admin (/metrics); repeatable")
    ] = None,
):
    """Create an API key; it is printed once and stored only as a hash."""

    def body():
        from inferloop.serving.keys import add_key

        scopes = scope or ["score"]
        path = _settings().serving.serve_keys_file
        key = add_key(path, name, scopes)
        console.print(f"API key {name!r} ({', '.join(scopes)}), stored hashed in {path}. Shown only now:")
        print(key)  # plain: no wrapping or markup around the one copy of the key

    run_cli_command(body)
