"""PostgreSQL for the production profile: Debian's server binaries, a cluster in the state dir
(how the server is started is its row in the service table, `inferloop.stack.services`).

PostgreSQL refuses to run as root; when inferloop runs as root the cluster belongs to (and the
server runs as) the `postgres` system user that Debian's package creates.
"""

import os
import pwd
import subprocess
import tempfile
import time
from pathlib import Path

from inferloop.core.errors import InferloopError
from inferloop.core.settings import Settings
from inferloop.stack.credentials import SERVICE_USER, StackCredentials

DATABASES = ("prefect", "mlflow", "mlflow_auth")
DEBIAN_SERVER_DIRS = Path("/usr/lib/postgresql")


class PostgresError(InferloopError, RuntimeError):
    """PostgreSQL is missing, or its cluster could not be created or reached."""


def server_bin_dir() -> Path:
    """The newest installed server's bin dir (Debian installs each major version side by side)."""
    found = sorted(
        (p for p in DEBIAN_SERVER_DIRS.glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresError(
            "The production profile needs the PostgreSQL server: install Debian's package "
            "(`apt-get install postgresql`; `make test` and `make up PROFILE=prod` do it when they can)"
        )
    return found[-1]


def run_as() -> str | None:
    """The user the server must run as: `postgres` when we are root, else ourselves (None)."""
    return "postgres" if os.geteuid() == 0 else None


def data_dir(settings: Settings) -> Path:
    return settings.state_dir / "postgres" / "data"


def init_cluster(settings: Settings, credentials: StackCredentials) -> None:
    """Create the cluster once: superuser `inferloop`, password authentication (scram-sha-256)."""
    directory = data_dir(settings)
    if (directory / "PG_VERSION").exists():
        return
    cluster_home = directory.parent
    cluster_home.mkdir(parents=True, exist_ok=True)
    cluster_home.chmod(0o700)
    owner = run_as()
    if owner:
        account = pwd.getpwnam(owner)
        os.chown(cluster_home, account.pw_uid, account.pw_gid)
    # The password reaches initdb through a private file, never its command line.
    with tempfile.NamedTemporaryFile("w", dir=cluster_home, prefix=".pw", delete=False) as password_file:
        password_file.write(credentials.PGPASSWORD)
    try:
        if owner:
            os.chown(password_file.name, account.pw_uid, account.pw_gid)
        result = subprocess.run(
            [
                str(server_bin_dir() / "initdb"),
                "-D",
                str(directory),
                "-U",
                SERVICE_USER,
                f"--pwfile={password_file.name}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            user=owner,
            capture_output=True,
            text=True,
            cwd="/",
        )
    finally:
        Path(password_file.name).unlink(missing_ok=True)
    if result.returncode != 0:
        hint = f" (it runs as `{owner}`, which must be able to reach {directory})" if owner else ""
        raise PostgresError(f"initdb failed{hint}:\n{result.stdout}{result.stderr}")


def create_databases(settings: Settings, credentials: StackCredentials, timeout: float = 60) -> None:
    """Create the Prefect, MLflow and MLflow-auth databases if missing (waits for start-up)."""
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = psycopg2.connect(
                host=settings.stack.stack_host,
                port=settings.stack.postgres_port,
                user=SERVICE_USER,
                password=credentials.PGPASSWORD,
                dbname="postgres",
                connect_timeout=3,
            )
            break
        except psycopg2.OperationalError as error:  # refused, or "the database system is starting up"
            if time.monotonic() > deadline:
                raise PostgresError(
                    f"PostgreSQL at {settings.stack.stack_host}:{settings.stack.postgres_port} did not "
                    f"accept connections within {timeout:.0f} s: {error}; "
                    f"see {settings.state_dir}/stack/postgres.log"
                ) from error
            time.sleep(0.5)
    connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database")
            existing = {row[0] for row in cursor.fetchall()}
            for name in DATABASES:
                if name not in existing:
                    cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


def database_url(settings: Settings, database: str, driver: str = "postgresql") -> str:
    """A URL without the password: libpq (MLflow) and asyncpg (Prefect) read PGPASSWORD."""
    return f"{driver}://{SERVICE_USER}@{settings.stack.stack_host}:{settings.stack.postgres_port}/{database}"
