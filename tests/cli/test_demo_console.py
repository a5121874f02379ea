"""`inferloop demo` prints only what is meant for people: inferloop's own lines and tables, no
library warnings, progress bars, banners or tracebacks (those are in the Prefect UI, and behind
--verbose)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
INFERLOOP = str(Path(sys.executable).parent / "inferloop")
# A flow's own line, as Prefect's console handler prints it.
FLOW_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (INFO|WARNING) +\| Flow run '[\w-]+' - \S")


def test_the_demo_prints_inferloops_lines_and_its_table_only(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "INFERLOOP_", "MLFLOW_"))}
    env |= {"INFERLOOP_STATE_DIR": str(tmp_path / "state"), "PREFECT_HOME": str(tmp_path / "prefect")}
    result = subprocess.run(
        [INFERLOOP, "demo", "--days", "12", "--rows-per-day", "2000"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    others = [line for line in result.stderr.splitlines() if line.strip() and not FLOW_LINE.match(line)]
    assert others == [], "\n".join(others[:20])
    flow_lines = result.stderr.splitlines()
    assert any("No @champion yet: training one on" in line for line in flow_lines)
    assert len(flow_lines) <= 40  # a line per day and per decision, not per task
    table = result.stdout
    assert "Lake (features, predictions, monitoring, quarantine)" in table
    for noise in ("Traceback", "Warning", "Downloading artifacts", "temporary server", "Treelite"):
        assert noise not in result.stdout + result.stderr, noise
