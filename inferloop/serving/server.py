"""Runs the endpoint under uvicorn, on the configured interface and port (HTTPS when a
certificate and key are configured)."""

import logging
import os
import socket
import ssl
import sys
from pathlib import Path

from inferloop.core.errors import InferloopError
from inferloop.core.settings import Settings
from inferloop.runtime.terminal_logs import verbose_requested
from inferloop.serving.app import create_app


def serve(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM; at shutdown, requests in flight finish and every scored row
    is written to the lake. uvicorn runs on httptools and uvloop (dependencies: its "auto"
    picks them). Its line per request only with `inferloop --verbose serve`: it cost about
    0.2 ms of server CPU per request, and /metrics counts the requests by status."""
    import uvicorn

    _log_to_stderr()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in the log
    serving = settings.serving
    tls = {}
    if serving.serve_tls_cert is not None:
        tls = {"ssl_certfile": str(serving.serve_tls_cert), "ssl_keyfile": str(serving.serve_tls_key)}
        _check_tls_files(serving.serve_tls_cert, serving.serve_tls_key)
    check_port_free(serving.serve_host, serving.serve_port)
    uvicorn.run(
        create_app(settings),
        host=serving.serve_host,
        port=serving.serve_port,
        log_level="info",
        access_log=verbose_requested(),
        timeout_graceful_shutdown=30,
        **tls,
    )


def check_port_free(host: str, port: int) -> None:
    """Bind once before loading a model: uvicorn would find the port taken only after that, and
    say so without naming the option that moves it."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise InferloopError(
                f"Cannot listen on {host}:{port} ({error.strerror}): another process holds the port; "
                "stop it, or pass --port (INFERLOOP_SERVE_PORT) with a free one"
            ) from None


def _check_tls_files(cert: Path, key: Path) -> None:
    """Load them once before uvicorn does: uvicorn would print the ssl module's traceback."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as error:
        raise InferloopError(
            f"Cannot load the TLS certificate {cert} with the key {key} ({error}): point "
            "INFERLOOP_SERVE_TLS_CERT and INFERLOOP_SERVE_TLS_KEY at a PEM certificate and its private key"
        ) from error


def _log_to_stderr() -> None:
    """The endpoint's own messages (versions loaded, registry problems, writes) beside uvicorn's;
    they never include keys or request bodies."""
    log = logging.getLogger("inferloop.serve")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
