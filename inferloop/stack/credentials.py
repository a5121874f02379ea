"""Credentials of the production profile: from the environment, else generated once per state dir.

Every credential travels under the environment variable its own tool reads (libpq's PGPASSWORD,
Prefect's PREFECT_API_AUTH_STRING, MLflow's MLFLOW_TRACKING_PASSWORD, boto3's AWS_*), so no code
of ours ever handles one beyond passing the environment on. A variable the user sets wins; missing
ones are generated on the first `inferloop up --profile prod` and kept in
`<state_dir>/stack/credentials.env` (mode 0600, never committed) so later starts reuse them.
"""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from inferloop.core.settings import Settings

SERVICE_USER = "inferloop"
# What a client (CLI, Prefect worker, flow runs, Dask workers) needs: API credentials, never the
# database password or the MLflow server's signing key.
CLIENT_CREDENTIALS = (
    "PREFECT_API_AUTH_STRING",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


@dataclass(frozen=True)
class StackCredentials:
    PGPASSWORD: str
    PREFECT_API_AUTH_STRING: str
    MLFLOW_TRACKING_USERNAME: str
    MLFLOW_TRACKING_PASSWORD: str
    AWS_ACCESS_KEY_ID: str
    AWS_SECRET_ACCESS_KEY: str
    MLFLOW_FLASK_SERVER_SECRET_KEY: str
    MLFLOW_AUTH_ADMIN_PASSWORD: str  # MLflow's admin: `inferloop up` makes the accounts with it
    MLFLOW_READER_PASSWORD: str  # the read-only account a person browses MLflow with

    def client_env(self) -> dict[str, str]:
        """The CLIENT_CREDENTIALS, by name."""
        return {name: getattr(self, name) for name in CLIENT_CREDENTIALS}

    def secret_values(self) -> list[str]:
        """The strings that must never appear in a log, artifact, param or tag (user names and the
        access key id are identifiers, not secrets)."""
        return [
            self.PGPASSWORD,
            self.PREFECT_API_AUTH_STRING.partition(":")[2],
            self.MLFLOW_TRACKING_PASSWORD,
            self.AWS_SECRET_ACCESS_KEY,
            self.MLFLOW_FLASK_SERVER_SECRET_KEY,
            self.MLFLOW_AUTH_ADMIN_PASSWORD,
            self.MLFLOW_READER_PASSWORD,
        ]


def credentials_file(settings: Settings) -> Path:
    return settings.state_dir / "stack" / "credentials.env"


def _generated() -> dict[str, str]:
    # MLflow's basic auth refuses admin passwords under 12 characters; these are 32.
    token = lambda: secrets.token_urlsafe(24)  # noqa: E731
    return {
        "PGPASSWORD": token(),
        "PREFECT_API_AUTH_STRING": f"{SERVICE_USER}:{token()}",
        "MLFLOW_TRACKING_USERNAME": SERVICE_USER,
        "MLFLOW_TRACKING_PASSWORD": token(),
        "AWS_ACCESS_KEY_ID": f"inferloop-{secrets.token_hex(6)}",
        "AWS_SECRET_ACCESS_KEY": token(),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": token(),
        "MLFLOW_AUTH_ADMIN_PASSWORD": token(),
        "MLFLOW_READER_PASSWORD": token(),
    }


def read_env_file(path: Path) -> dict[str, str]:
    """The `export NAME=value` lines of `path` (what `source` would set); {} when it is missing."""
    if not path.exists():
        return {}
    pairs = (line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines())
    return {name: value for name, value in (p for p in pairs if len(p) == 2)}


def write_private_env_file(path: Path, values: dict[str, str]) -> None:
    """An `export NAME=value` file only its owner can read (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.writelines(f"export {name}={value}\n" for name, value in values.items())
    path.chmod(0o600)


def stack_credentials(settings: Settings) -> StackCredentials:
    """Environment first, then the state dir's credentials file, then newly generated (and saved)."""
    stored = read_env_file(credentials_file(settings))
    values = {
        name: os.environ.get(name) or stored.get(name) or generated
        for name, generated in _generated().items()
    }
    if values != stored:
        write_private_env_file(credentials_file(settings), values)
    return StackCredentials(**values)
