"""Process-wide defaults that keep Prefect, MLflow, GX and AWS clients offline and local."""

import os
from pathlib import Path

# Values a user sets explicitly win: these are defaults, applied with setdefault.
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "true",  # MLflow honours only the literal "true"
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    # A cold ephemeral Prefect API takes ~18 s on 2 cores; the default 20 s timeout is too tight.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # Without credentials, AWS SDKs probe the EC2 metadata endpoint, which hangs offline.
    "AWS_EC2_METADATA_DISABLED": "true",
    "GIT_PYTHON_REFRESH": "quiet",
    # MLflow's default retries back off for minutes when the server is down; fail within ~10 s.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "PREFECT_UI_SHOW_PROMOTIONAL_CONTENT": "false",
}


def apply_offline_defaults() -> None:
    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)
    # Keep Prefect's local database and profiles inside the project's state dir, not ~/.prefect.
    state_dir = Path(os.environ.get("INFERLOOP_STATE_DIR", ".inferloop")).absolute()
    os.environ.setdefault("PREFECT_HOME", str(state_dir / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
