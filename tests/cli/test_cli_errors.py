"""The last ways a user could get a traceback from the CLI: each is one line naming what to fix,
with a non-zero exit code, printed before any flow (or its temporary Prefect API) starts. And
messages are printed as they are: rich markup would delete `[ns, UTC]` from `datetime64[ns, UTC]`."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from inferloop.cli.commands import app

INFERLOOP = str(Path(sys.executable).parent / "inferloop")


def lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def assert_one_clear_line(result, *expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert len(lines(result.output)) == 1, result.output
    (line,) = lines(result.output)
    assert line.startswith("error: ")
    for text in expected:
        assert text in line, line


def test_a_tracking_uri_with_an_unknown_scheme_is_refused_before_training_starts(workdir, monkeypatch):
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", "htp:/x")
    result = CliRunner().invoke(app, ["train"])
    # One line: no Prefect server was started, no flow ran, nothing was gated or fitted first.
    assert_one_clear_line(result, "INFERLOOP_TRACKING_URI", "'htp' is not a scheme MLflow can track to")


def test_a_tracking_uri_that_names_no_server_is_refused(workdir, monkeypatch):
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", "http:/x")
    assert_one_clear_line(CliRunner().invoke(app, ["status"]), "INFERLOOP_TRACKING_URI", "names no server")


@pytest.mark.parametrize("state_dir", ["/proc/inferloop-state", "{file}/state"])
def test_an_unusable_state_dir_is_one_line_naming_the_variable(tmp_path, state_dir):
    """A process-wide setting read at import: run the real command in its own process."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    env = {**os.environ, "INFERLOOP_STATE_DIR": state_dir.format(file=a_file)}
    env.pop("PREFECT_HOME", None)
    result = subprocess.run([INFERLOOP, "status"], capture_output=True, text=True, env=env, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output and "Warning" not in output  # nor Prefect's warning about its home
    (line,) = lines(output)
    assert line.startswith("error: The state dir") and "point INFERLOOP_STATE_DIR at a folder" in line


def test_a_parquet_file_with_a_column_name_twice_is_one_line(workdir):
    source = workdir / "dup.parquet"
    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4])], names=["amount", "amount"]), source)
    result = CliRunner().invoke(app, ["data", "import", "--source", str(source)])
    assert_one_clear_line(result, "more than one column named 'amount'")


@pytest.mark.parametrize(
    "command",
    [
        ["infer", "--from", "2026-01-05", "--to", "2026-01-02"],
        ["replay", "--from", "2026-01-05", "--to", "2026-01-02"],
        ["train", "--start", "2026-01-05", "--end", "2026-01-02"],
        ["promote", "--start", "2026-01-05", "--end", "2026-01-02"],
        ["expectations", "suggest", "--from", "2026-01-05..2026-01-02"],
    ],
)
def test_a_reversed_date_range_is_one_line(workdir, command):
    result = CliRunner().invoke(app, command)
    assert_one_clear_line(result, "2026-01-05 is after 2026-01-02", "give the earlier day first")


def test_a_reversed_range_of_hours_is_one_line(workdir):
    result = CliRunner().invoke(app, ["replay", "--from", "2026-01-05T07", "--to", "2026-01-05"])
    assert_one_clear_line(result, "2026-01-05 07:00:00 is after 2026-01-05", "give the earlier day first")


def test_a_suggest_window_takes_hours_of_an_hourly_feed(workdir):
    reversed_hours = ["expectations", "suggest", "--from", "2026-01-05T07..2026-01-05T03"]
    result = CliRunner().invoke(app, reversed_hours)
    assert_one_clear_line(result, "2026-01-05 07:00:00 is after 2026-01-05 03:00:00")
    result = CliRunner().invoke(app, ["expectations", "suggest", "--from", "2026-01-05..soon"])
    assert_one_clear_line(result, "Expected a range of days like 2026-01-01..2026-01-07", "2026-01-07T23")


def test_a_partition_that_is_neither_a_day_nor_an_hour_is_refused_with_both_forms(workdir):
    result = CliRunner().invoke(app, ["replay", "--from", "2026-13-01", "--to", "2026-12-01"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    words = " ".join(word for word in result.output.split() if word != "│")  # the box's borders
    assert (
        "Invalid value for '--from': '2026-13-01' is not a day (2026-03-01) or an hour (2026-03-01T07)"
        in words
    )


def test_an_unknown_suite_purpose_is_refused_before_any_flow(workdir):
    """It used to start a flow (over a minute on a busy machine) and then ask for a suite
    named after the typo."""
    result = CliRunner().invoke(app, ["validate", "--date", "2026-01-02", "--purpose", "bogus"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    words = " ".join(word for word in result.output.split() if word != "│")  # the box's borders
    assert "Invalid value for '--purpose'" in words
    assert "'bogus' is not one of 'inference', 'training'" in words


def test_a_misspelt_promotion_mode_is_refused_not_run_as_auto(workdir):
    """`--mode aprove` used to run as auto: the gates alone would have moved @champion."""
    result = CliRunner().invoke(app, ["promote", "--mode", "aprove"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    words = " ".join(word for word in result.output.split() if word != "│")
    assert "Invalid value for '--mode'" in words and "'aprove' is not one of 'auto', 'approve'" in words


def test_square_brackets_in_a_message_are_printed_as_they_are(workdir):
    """rich markup reads `[ns, UTC]` and `[bold]` as tags and drops them; messages are data."""
    source = workdir / "feed.csv"
    source.write_text('transaction_id,"when[ns, UTC]",[bold]x\n1,2,3\n')
    result = CliRunner().invoke(app, ["data", "import", "--source", str(source), "--delimiter", ","])
    assert_one_clear_line(result, "'when[ns, UTC]'", "'[bold]x'")


def test_a_misspelt_setting_is_a_warning_with_the_knob_it_probably_means(workdir, monkeypatch):
    monkeypatch.setenv("INFERLOOP_TRAIN_WINDOW_DAY", "3")
    monkeypatch.setenv("INFERLOOP_COMPLETELY_UNKNOWN", "1")
    result = CliRunner().invoke(app, ["data", "generate", "--days", "1", "--rows-per-day", "100"])
    assert result.exit_code == 0, result.output  # a warning, not a failure
    assert (
        "warning: INFERLOOP_TRAIN_WINDOW_DAY is not an inferloop setting and is ignored: "
        "did you mean INFERLOOP_TRAIN_WINDOW_DAYS?" in lines(result.output)
    )
    assert any(
        line.startswith("warning: INFERLOOP_COMPLETELY_UNKNOWN is not an inferloop setting")
        for line in lines(result.output)
    )
    assert "Wrote 1 days" in result.output


def test_a_tls_certificate_that_is_no_pem_is_one_line_before_serving(workdir, monkeypatch):
    not_pem = workdir / "cert.pem"
    not_pem.write_text("transaction_id,amount\n1,2\n")
    monkeypatch.setenv("INFERLOOP_SERVE_TLS_CERT", str(not_pem))
    monkeypatch.setenv("INFERLOOP_SERVE_TLS_KEY", str(not_pem))
    result = CliRunner().invoke(app, ["serve", "--port", "1"])  # refused before any port is bound
    assert_one_clear_line(result, f"Cannot load the TLS certificate {not_pem}", "INFERLOOP_SERVE_TLS_KEY")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connections are refused


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_a_prefect_api_that_refuses_connections_is_one_line_before_any_flow(workdir, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{closed_port()}/api")
    result = CliRunner().invoke(app, ["infer", "--date", "2026-01-02"])
    assert_one_clear_line(result, "The Prefect API at", "does not answer", "unset PREFECT_API_URL")


def test_a_prefect_api_that_never_answers_is_one_line(workdir, monkeypatch, silent_port):
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{silent_port}/api")
    result = CliRunner().invoke(app, ["validate", "--date", "2026-01-02"])
    assert_one_clear_line(result, "The Prefect API at", "no answer within 5 s")


def test_a_prefect_api_url_that_is_no_url_is_one_line(workdir, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "not a url")
    result = CliRunner().invoke(app, ["validate", "--date", "2026-01-02"])
    assert_one_clear_line(result, "'not a url/health'", "no http:// or https:// URL", "unset PREFECT_API_URL")


def test_a_closed_mlflow_port_is_one_line_before_training(workdir, monkeypatch):
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    result = CliRunner().invoke(app, ["train"])
    assert_one_clear_line(result, "The MLflow tracking server at", "INFERLOOP_TRACKING_URI")


def test_a_server_that_answers_at_all_passes_the_check(mlflow_server):
    from inferloop.runtime.reachability import check_answers

    check_answers("MLflow", f"{mlflow_server}/health", "-")
    check_answers("MLflow", f"{mlflow_server}/no-such-page", "-")  # a 404 is an answer


def test_a_dead_dask_scheduler_is_one_line_before_any_flow(workdir):
    address = f"tcp://127.0.0.1:{closed_port()}"
    command = ["infer", "--date", "2026-01-02", "--runner", "dask", "--dask-address", address]
    result = CliRunner().invoke(app, command)
    assert_one_clear_line(result, f"The Dask scheduler at {address} does not answer", "--runner thread")


def test_a_dask_scheduler_port_that_never_answers_is_one_line(workdir, silent_port):
    """It accepted the connection, so the run waited for its handshake for minutes."""
    address = f"tcp://127.0.0.1:{silent_port}"
    command = ["infer", "--date", "2026-01-02", "--runner", "dask", "--dask-address", address]
    result = CliRunner().invoke(app, command)
    assert_one_clear_line(result, f"The Dask scheduler at {address} does not answer (no answer within 5 s)")


def test_a_dask_address_that_is_no_address_is_one_line(workdir):
    command = ["infer", "--date", "2026-01-02", "--runner", "dask", "--dask-address", "::not an address::"]
    result = CliRunner().invoke(app, command)
    assert_one_clear_line(result, "'::not an address::' is not like tcp://host:port", "--dask-address")


def test_a_tls_dask_scheduler_without_the_cluster_key_is_one_line(workdir):
    address = f"tls://127.0.0.1:{closed_port()}"
    command = ["infer", "--date", "2026-01-02", "--runner", "dask", "--dask-address", address]
    result = CliRunner().invoke(app, command)
    assert_one_clear_line(result, f"The Dask scheduler at {address} admits only holders", "stack.env")
