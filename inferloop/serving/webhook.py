"""MLflow's registry webhook: the endpoint follows a move of @champion (or a breach opened or
closed on the champion's version) at once instead of at the next poll.

MLflow (3.3+, SQL backends) POSTs an event to the URL registered for it, signed with the shared
secret: `v1,` + base64 HMAC-SHA256 of `<delivery id>.<timestamp>.<body>`. A call whose signature
does not verify, or whose timestamp is more than `MAX_AGE_SECONDS` away, is refused; a verified
one only wakes the alias check, which asks the registry itself: nothing in the body is trusted.
Polling stays on: a webhook that is lost (or a backend without webhooks) delays, never stops,
following the alias.
"""

import base64
import hashlib
import hmac
import logging
import threading
import time

from inferloop.core.registry import Registry, RegistryError

log = logging.getLogger("inferloop.serve")
PATH = "/hooks/mlflow"
EVENTS = [
    "model_version_alias.created",
    "model_version_alias.deleted",
    "model_version_tag.set",
    "model_version_tag.deleted",
]
MAX_AGE_SECONDS = 300
MAX_BYTES = 64 * 1024  # an event is a few hundred bytes; nothing larger is read before it verifies
SIGNATURE_HEADER, DELIVERY_HEADER, TIMESTAMP_HEADER = (
    "X-MLflow-Signature",
    "X-MLflow-Delivery-Id",
    "X-MLflow-Timestamp",
)


def signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def verified(secret: str, headers, body: bytes, now: float | None = None) -> str | None:
    """None when the call is MLflow's, signed with `secret` and recent; else why not."""
    delivery, timestamp = headers.get(DELIVERY_HEADER, ""), headers.get(TIMESTAMP_HEADER, "")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > MAX_AGE_SECONDS:
        return f"{TIMESTAMP_HEADER} is missing or more than {MAX_AGE_SECONDS} s away"
    expected = signature(secret, delivery, timestamp, body)
    if not hmac.compare_digest(expected.encode(), headers.get(SIGNATURE_HEADER, "").encode()):
        return f"{SIGNATURE_HEADER} does not match INFERLOOP_SERVE_WEBHOOK_SECRET"
    return None


def register_webhook(registry: Registry, url: str, secret: str) -> str:
    """Create (or point at `url` again) this model's webhook on the MLflow server; what happened,
    for the log. A backend without webhooks (file store, older MLflow) or one refusing the URL
    leaves the endpoint polling, and says so."""
    name = f"inferloop-serve-{registry.model_name}"
    try:
        with registry.translated(f"register the webhook {name}"):
            client = registry.client
            existing = _named_webhook(client, name)
            if existing is None:
                client.create_webhook(name, url, EVENTS, secret=secret, description="inferloop serve")
            else:
                client.update_webhook(existing.webhook_id, url=url, events=EVENTS, secret=secret)
    except (RegistryError, NotImplementedError) as error:  # keep polling
        return f"MLflow's webhook is not used ({error}); the endpoint polls @champion"
    # MLflow's webhooks are server-wide: any model's alias or tag change wakes one alias check.
    return f"MLflow calls {url} when an alias or a version tag changes"


def _named_webhook(client, name: str):
    """The MLflow server's webhook called `name`, looked for on every page of the list."""
    token = None
    while True:
        page = client.list_webhooks(page_token=token)
        if found := next((w for w in page if w.name == name), None):
            return found
        if not (token := page.token):
            return None


def start_webhook_registration(settings, registry: Registry) -> None:
    """Register the webhook in the background (a slow MLflow must not hold up start-up), when
    both the URL and the secret are set; one without the other is said at start."""
    serving = settings.serving
    url, secret = serving.serve_webhook_url, serving.serve_webhook_secret
    secret = secret.get_secret_value() if secret else ""
    if bool(url) != bool(secret):
        log.warning(
            "MLflow's webhook is off: set both INFERLOOP_SERVE_WEBHOOK_URL and "
            "INFERLOOP_SERVE_WEBHOOK_SECRET (one is empty); the endpoint polls @champion"
        )
    if url and secret:
        threading.Thread(
            target=lambda: log.info("%s", register_webhook(registry, url, secret)),
            name="register-webhook",
            daemon=True,
        ).start()
