"""Mutual TLS for the prod profile's Dask cluster: only a holder of the cluster's key may connect.

The scheduler, the workers and every client (the CLI, the Prefect worker's flow runs) present the
same certificate, signed by nobody but itself, and each side requires the other's: distributed's
TLS verifies both ends (`ssl.CERT_REQUIRED`) against that one certificate as its authority. A
process without the key file cannot connect, so it cannot `Client.run` code on the workers (which
hold the stack's client credentials) or submit tasks.

Dask reads the files from its configuration, set through the environment (`DASK_DISTRIBUTED__...`,
see `tls_env`), so `dask scheduler`, `dask worker` and prefect-dask's client need no option.
Generated once into `<state_dir>/stack/dask-tls/` (directory 0700, files 0600) with distributed's
own generator; a new one replaces it 30 days before it expires, at the next `inferloop up`.
`python -m inferloop.stack.dask_tls DIR` does the same in DIR for the containers (compose's
`dask-tls-init`; a Kubernetes Secret, docs/production.md).
"""

import datetime
import sys
from pathlib import Path

from inferloop.core.settings import Settings

RENEW_BEFORE = datetime.timedelta(days=30)
CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "cert.pem", "key.pem"
# Dask's configuration keys (distributed.comm.*) as environment variables, each a file name.
_TLS_VARIABLES = {
    "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": CA_FILE,
    **{
        f"DASK_DISTRIBUTED__COMM__TLS__{role}__{part}": file
        for role in ("SCHEDULER", "WORKER", "CLIENT")
        for part, file in (("CERT", CERT_FILE), ("KEY", KEY_FILE))
    },
}
REQUIRE_ENCRYPTION = "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"
TLS_VARIABLES = (REQUIRE_ENCRYPTION, *_TLS_VARIABLES)


def tls_dir(settings: Settings) -> Path:
    return settings.state_dir / "stack" / "dask-tls"


def tls_env(directory: Path | str) -> dict[str, str]:
    """The variables that make every Dask process of the cluster speak TLS with these files."""
    return {
        REQUIRE_ENCRYPTION: "True",
        **{name: f"{directory}/{file}" for name, file in _TLS_VARIABLES.items()},
    }


def _expires_soon(cert_file: Path) -> bool:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) < RENEW_BEFORE


def write_certificates(directory: Path) -> None:
    """A new key and certificate (and the certificate as the authority), readable by the owner only."""
    from distributed.security import Security

    generated = Security.temporary()  # in memory; PEM strings
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    for name, text in (
        (CA_FILE, generated.tls_ca_file),
        (CERT_FILE, generated.tls_client_cert),
        (KEY_FILE, generated.tls_client_key),
    ):
        path = directory / name
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(text)


def ensure_certificates(directory: Path) -> None:
    """The cluster's files in `directory`: kept while valid for more than RENEW_BEFORE, else
    generated anew."""
    if not all((directory / name).exists() for name in (CA_FILE, CERT_FILE, KEY_FILE)) or _expires_soon(
        directory / CERT_FILE
    ):
        write_certificates(directory)


def client_security(settings: Settings):
    """A distributed `Security` for a client in this process (`inferloop up` waiting for workers)."""
    from distributed.security import Security

    directory = tls_dir(settings)
    return Security(
        require_encryption=True,
        tls_ca_file=str(directory / CA_FILE),
        tls_client_cert=str(directory / CERT_FILE),
        tls_client_key=str(directory / KEY_FILE),
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m inferloop.stack.dask_tls DIR")
    ensure_certificates(Path(sys.argv[1]))
