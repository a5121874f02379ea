"""Before a command starts a flow: do the servers it will call answer?

Without this, a Prefect API that refuses connections failed after ~17 s with a traceback (its
client retries), a closed MLflow port after 36-69 s, and a port that accepts connections but never
answers after minutes. Asked here once, with a short timeout, either is one line in seconds that
names the setting to fix. Any HTTP answer counts, even 401: credentials are the clients' concern.
"""

import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

from inferloop.core.errors import InferloopError
from inferloop.core.settings import RegistrySettings, RunnerSettings

TIMEOUT_SECONDS = 5.0


class ServiceUnreachable(InferloopError, ConnectionError):
    """A server the command needs does not answer; the message names the setting."""


def check_answers(name: str, url: str, what_to_do: str, timeout: float = TIMEOUT_SECONDS) -> None:
    """Raise ServiceUnreachable when `url` refuses the connection, cannot be resolved, or gives
    no answer within `timeout` seconds, or is no http(s) URL at all."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ServiceUnreachable(
            f"{name} at {url!r} cannot be asked: that is no http:// or https:// URL; {what_to_do}"
        )
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, TimeoutError | ConnectionError | socket.gaierror):
            why = f"no answer within {timeout:g} s" if isinstance(reason, TimeoutError) else str(reason)
            raise ServiceUnreachable(f"{name} at {url} does not answer ({why}): {what_to_do}") from error
        # Anything else (TLS, a proxy, an odd URL) is left to the client, which says more.


def check_prefect_api(environ: Mapping[str, str]) -> None:
    """The Prefect API named by PREFECT_API_URL, when one is (else flows start a temporary one)."""
    api = environ.get("PREFECT_API_URL", "").rstrip("/")
    if api:
        check_answers(
            "The Prefect API",
            f"{api}/health",
            "start it (make up), or unset PREFECT_API_URL to run with a temporary one",
        )


def check_tracking_server(registry: RegistrySettings) -> None:
    """The MLflow tracking server, when the tracking URI names one (not a local store)."""
    uri = registry.tracking_uri.rstrip("/")
    if uri.startswith(("http://", "https://")):
        check_answers(
            "The MLflow tracking server",
            f"{uri}/health",
            "start it (make up), or point INFERLOOP_TRACKING_URI at a running one",
        )


def _dask_tls_configured() -> bool:
    """Whether Dask's configuration (its DASK_* environment) names a client certificate."""
    import dask.config

    return bool(dask.config.get("distributed.comm.tls.client.cert", None))


def check_dask_scheduler(runner: RunnerSettings, timeout: float = TIMEOUT_SECONDS) -> None:
    """The Dask scheduler at `dask_address`, when the task runner is dask and names one (without
    an address, a run starts its own local cluster)."""
    if runner.task_runner != "dask" or not runner.dask_address:
        return
    address = urlsplit(
        runner.dask_address if "://" in runner.dask_address else f"tcp://{runner.dask_address}"
    )
    if address.scheme == "tls" and not _dask_tls_configured():
        raise ServiceUnreachable(
            f"The Dask scheduler at {runner.dask_address} admits only holders of its cluster's key, "
            "and this process has none: `source .inferloop/stack/stack.env` (it sets "
            "DASK_DISTRIBUTED__COMM__TLS__*), or use --runner thread"
        )
    try:
        host, port = address.hostname, address.port or 8786
    except ValueError as error:  # a port that is no number
        raise ServiceUnreachable(
            f"The Dask scheduler address {runner.dask_address!r} is not like tcp://host:port ({error}): "
            "fix --dask-address (INFERLOOP_DASK_ADDRESS), or use --runner thread"
        ) from error
    try:
        with socket.create_connection((host, port), timeout=timeout) as comm:
            # Over tcp:// a scheduler greets first (its handshake); a port that only accepts would
            # hold the run for minutes. Over tls:// the client speaks first: the connection is all.
            if address.scheme == "tcp" and not comm.recv(1):
                raise ConnectionAbortedError("closed the connection without a word")
    except (TimeoutError, ConnectionError, socket.gaierror) as error:
        why = f"no answer within {timeout:g} s" if isinstance(error, TimeoutError) else str(error)
        raise ServiceUnreachable(
            f"The Dask scheduler at {runner.dask_address} does not answer ({why}): start it, pass "
            "--dask-address of a running one, or use --runner thread"
        ) from error
