"""`inferloop alerts`: checks alerts.yaml, or applies it; each failure is one line."""

from typer.testing import CliRunner

from inferloop.cli.commands import app
from tests.conftest import free_port


def assert_one_clear_line(result, *expected: str) -> None:
    """Exit 1, no traceback, one `error:` line saying it all (warnings about the environment may
    precede it)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    for text in expected:
        assert text in errors[0], errors[0]


def test_check_reads_the_committed_file(workdir):
    result = CliRunner().invoke(app, ["alerts", "--check"])
    assert result.exit_code == 0, result.output
    assert "alerts.yaml: 2 channels, 10 alerts, valid" in result.output


def test_a_broken_file_is_one_line_naming_the_entry(workdir, monkeypatch, tmp_path):
    broken = tmp_path / "alerts.yaml"
    broken.write_text(
        "channels: {}\nalerts:\n  refused: {event: inferloop.partition.refused, channels: [ops]}\n"
    )
    monkeypatch.setattr("inferloop.stack.alerts_config.ALERTS_FILE", broken)
    result = CliRunner().invoke(app, ["alerts", "--check"])
    assert_one_clear_line(result, "alert 'refused' sends to unknown channel(s) ops")


def test_an_unreachable_prefect_api_is_one_line(workdir, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    result = CliRunner().invoke(app, ["alerts"])
    assert_one_clear_line(
        result, "Applying alerts.yaml to the Prefect API", "Connection refused", "inferloop up"
    )
