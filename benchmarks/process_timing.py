"""Timing whole CLI processes on a shared machine: wall time, peak RSS and CPU from GNU time,
when the Prefect flow run began and finished (from its log lines), and how much CPU everything
else on the machine used meanwhile, so a figure measured next to other work says so."""

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine has been busy since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS  # minus idle and iowait


def session_cpu_seconds(sessions: set[int]) -> float:
    """CPU seconds used so far by the live processes of these sessions (e.g. services started
    with start_new_session, whose session id is their PID)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) in sessions:  # field 6: session id
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def timed_cli(command: list[str], env: dict[str, str], sessions: frozenset[int] = frozenset()) -> dict:
    """Run `command` under GNU time: wall seconds, peak RSS (GB), CPU seconds of the process and
    its children plus of `sessions` (servers or workers it uses), `flow_began`/`flow_finished`
    (seconds after start, from Prefect's log lines) and `others_cores`: CPU used meanwhile by
    everything else on the machine, in cores."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        machine, helpers = machine_cpu_seconds(), session_cpu_seconds(set(sessions))
        started = time.perf_counter()
        process = subprocess.Popen(
            ["/usr/bin/time", "-v", "-o", report.name, *command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        marks, output = {}, []
        for line in process.stdout:
            output.append(line)
            if "Flow run" in line and "Beginning flow run" in line:
                marks.setdefault("flow_began", time.perf_counter() - started)
            if "Flow run" in line and "Finished in state" in line:
                marks["flow_finished"] = time.perf_counter() - started
        if process.wait() != 0:
            raise RuntimeError(f"{' '.join(command[:3])} failed:\n{''.join(output)[-3000:]}")
        wall = time.perf_counter() - started
        machine = machine_cpu_seconds() - machine
        helpers = session_cpu_seconds(set(sessions)) - helpers
        text = report.read()
    elapsed = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in elapsed.groups())
    own = sum(
        float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", text).group(1)) for kind in ("User", "System")
    )
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return {
        "seconds": hours * 3600 + minutes * 60 + seconds,
        "peak_rss_gb": rss_kb / 1e6,
        "cpu_seconds": own + helpers,
        "others_cores": max(machine - own - helpers, 0.0) / wall,
        **marks,
    }
