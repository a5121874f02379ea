"""The S3 API `inferloop up` runs: moto's server, standing in for MinIO or S3 on this machine.

`python -m inferloop.stack.s3_api -H HOST -p PORT` is moto's own server (every request accepted,
as the local profile wants). With `--signed-only` (the prod profile) it answers only requests
signed with the one account it knows, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from its
environment: moto's IAM enforcement (INITIAL_NO_AUTH_ACTION_COUNT=0) checks every request's
signature, so an unsigned or wrongly signed list, GET or PUT is refused with 403 (only requests
signed in the Authorization header, as boto3, pyarrow and MLflow send them). moto's own control
API (`/moto-api/reset-auth` would switch that check off, `reset` wipes the store,
`data.json` dumps it) is closed then; only its dashboard page, the health check, answers.
"""

import argparse
import json
import os
import sys

HEALTH_PATH = "/moto-api/"
ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Requests to this endpoint must be signed with its account's key, in the "
    b"Authorization header (this local stand-in takes no presigned URL)</Message></Error>"
)
SERVICE_ACCOUNT = "inferloop"
# What the stack's account may do: everything, on this private endpoint (MinIO's `readwrite`).
ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


def _add_service_account(access_key_id: str, secret_access_key: str) -> None:
    """The stack's key as moto's one IAM user. moto makes up the keys it creates: ours replace them."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    iam.create_user("us-east-1", SERVICE_ACCOUNT)
    iam.put_user_policy(SERVICE_ACCOUNT, "readwrite", ALLOW_ALL)
    key = iam.create_access_key(SERVICE_ACCOUNT)
    del iam.access_keys[key.physical_resource_id]
    key.access_key_id, key.secret_access_key = access_key_id, secret_access_key
    iam.access_keys[key.physical_resource_id] = key


def _signed_only(app):
    """WSGI middleware: 403 for a request without a header signature (moto would fail on it with
    a 500; moto cannot check presigned URLs, so `inferloop up` tells MLflow's clients not to ask
    for them, services.PROXIED_ARTIFACTS_ONLY) and for moto's control API, except the dashboard
    page (the health check)."""

    def guarded(environ, start_response):
        path = environ.get("PATH_INFO", "")
        control_api = path.startswith("/moto-api/") and path != HEALTH_PATH
        if control_api or (path != HEALTH_PATH and "HTTP_AUTHORIZATION" not in environ):
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [ACCESS_DENIED]
        return app(environ, start_response)

    return guarded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--signed-only", action="store_true", help="refuse requests not signed with AWS_*")
    args = parser.parse_args(argv)
    if not args.signed_only:
        from moto.server import main as moto_server

        moto_server(["-H", args.host, "-p", str(args.port)])
        return
    access_key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not (access_key_id and secret):
        sys.exit("--signed-only needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"  # read by moto.settings when it is imported
    os.environ["MOTO_PORT"] = str(args.port)
    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    _add_service_account(access_key_id, secret)
    run_simple(
        args.host,
        args.port,
        _signed_only(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
