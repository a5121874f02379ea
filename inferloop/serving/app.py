"""The FastAPI application of `inferloop serve`.

    POST /invocations   score rows (MLflow's dataframe_split, dataframe_records, inputs); scope `score`
    POST /v2/models/{name}/infer, GET /v2/models/{name}
                        the same, as the Open Inference Protocol (V2) speaks it (`v2.py`); scope `score`
    GET  /v2            the server's V2 metadata; scope `score`
    GET  /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/{version}]/ready
                        the V2 health API: as /health/live and /health/ready
    GET  /health/live   the process answers
    GET  /health/ready  200 once a model is loaded (and whether following @champion is stale), else 503
    GET  /metrics       Prometheus metrics; scope `admin`
    GET  /docs          the OpenAPI page (/openapi.json)

Every keyed request first passes the key's rate limit (`rate_limit.py`): over it, 429 with
`Retry-After`.

Every answer to /invocations names its request id; a scored answer names the model version
that scored it, and accounts for every row (rows_in = rows_scored + rows_rejected). Request
bodies and keys are never logged.
"""

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool

from inferloop.core.registry import Registry
from inferloop.core.settings import Settings
from inferloop.core.storage import lake_storage
from inferloop.serving.batching import Coalescer, NoModelLoaded, ScoredRequest
from inferloop.serving.champion import ChampionFollower, ServedModel
from inferloop.serving.contract import RequestContract, RequestError, inference_expectations, parse_body
from inferloop.serving.events import DegradedAlert, StaleAlert, VersionChangedEvent
from inferloop.serving.keys import ApiKey, KeyStore, read_keys
from inferloop.serving.loader import ModelLoader
from inferloop.serving.metrics import ServingMetrics
from inferloop.serving.online_log import OnlineLog
from inferloop.serving.openapi import ERRORS, REQUEST_BODY, ErrorResponse, InvocationResponse
from inferloop.serving.rate_limit import RateLimiter
from inferloop.serving.v2 import infer_answer, model_metadata, parse_infer_request, readiness, server_metadata
from inferloop.serving.webhook import MAX_BYTES as WEBHOOK_MAX_BYTES
from inferloop.serving.webhook import PATH as WEBHOOK_PATH
from inferloop.serving.webhook import start_webhook_registration
from inferloop.serving.webhook import verified as webhook_verified

log = logging.getLogger("inferloop.serve")
INLINE_BODY_BYTES = 64 * 1024  # larger bodies are parsed in a worker thread, off the event loop


class ServingError(Exception):
    """An answer other than 200, with its status, one-line message and headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class RequestOnlyRoute(APIRoute):
    """A route whose endpoint takes the request alone and checks its key itself. FastAPI
    documents it from its declaration (security, body, responses) like any other route, but
    solves no dependencies per request (0.1-0.2 ms of CPU a request, measured on a stand-in app)."""

    def get_route_handler(self):
        return self.endpoint


@dataclass
class Runtime:
    settings: Settings
    contract: RequestContract
    keys: KeyStore
    follower: ChampionFollower
    loader: ModelLoader
    online_log: OnlineLog
    coalescer: Coalescer
    metrics: ServingMetrics
    rate_limiter: RateLimiter


YOUNG_COLLECTION_OBJECTS = 10_000


def settle_heap() -> None:
    """Once the first model is loaded (the libraries it and the registry client import are in by
    then), take what the endpoint keeps for its whole life out of the cyclic garbage collector's
    view (`gc.freeze`), and collect the youngest objects every `YOUNG_COLLECTION_OBJECTS`
    allocations instead of 700. Under 32 clients on 2 cores, full collections over the 480-565k
    start-up objects took 270-430 ms every few seconds, stalling every request in flight; frozen,
    1.3-7 ms. The freeze alone measured fewer requests/s; with the young threshold, the p99 was
    lower in all 6 runs (45-218 vs 123-250 ms) and requests/s as high or higher (3 interleaved
    pairs, docs/benchmarks.md)."""
    gc.collect()  # start-up garbage is collected, not frozen
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_OBJECTS, *gc.get_threshold()[1:])


def build_runtime(settings: Settings) -> Runtime:
    """Every part of the endpoint, not started."""
    spec, registry_settings, serving = settings.dataset, settings.registry, settings.serving
    metrics = ServingMetrics()
    contract = RequestContract(spec, inference_expectations(spec, settings.gate))
    registry = Registry(registry_settings.tracking_uri, registry_settings.model_name)
    loader = ModelLoader(registry)

    version_changed = VersionChangedEvent(registry_settings.model_name, registry_settings.tracking_uri)

    def swapped(old: ServedModel | None, new: ServedModel) -> None:
        metrics.swapped(new.ref.name, old.ref.version if old else None, new.ref.version)
        version_changed(old, new)
        if old is None:
            settle_heap()

    follower = ChampionFollower(
        registry,
        registry_settings.champion_alias,
        serving.serve_poll_seconds,
        on_swap=swapped,
        on_check=lambda ok: checked(ok),
        degraded_policy=serving.serve_degraded_policy,
        fallback_alias=registry_settings.previous_champion_alias,
        on_degraded=lambda served: degraded_alert(served),
        load=loader,
    )
    degraded_alert = DegradedAlert(
        registry_settings.model_name, metrics.degraded, registry_settings.tracking_uri
    )
    stale_alert = StaleAlert(
        registry_settings.model_name,
        version=lambda: follower.state().version,
        problem=lambda: follower.state().problem,
        tracking_uri=registry_settings.tracking_uri,
    )

    def checked(ok: bool) -> None:
        metrics.stale.set(0 if ok else 1)
        stale_alert(ok)  # the inferloop.serving.stale alert, once per registry outage

    online_log = OnlineLog(
        lake_storage(settings.lake),
        registry_settings.model_name,
        spec.time_column,
        serving.serve_queue_rows,
        serving.serve_flush_seconds,
        spec.partitioning,
    )
    coalescer = Coalescer(
        contract,
        follower,
        online_log,
        metrics,
        settings.scoring.decision_threshold,
        serving.serve_max_batch_rows,
        serving.serve_max_wait_ms,
    )
    metrics.queue_rows.set_function(lambda: online_log.held_rows)
    metrics.rows_written.set_function(lambda: online_log.rows_written)
    metrics.seconds_since_check.set_function(lambda: follower.state().seconds_since_check or 0.0)
    return Runtime(
        settings,
        contract,
        KeyStore(serving.serve_keys_file),
        follower,
        loader,
        online_log,
        coalescer,
        metrics,
        RateLimiter(serving.serve_rate_per_second, serving.serve_rate_burst),
    )


def create_app(settings: Settings) -> FastAPI:
    runtime: Runtime | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        nonlocal runtime
        runtime = await run_in_threadpool(build_runtime, settings)
        if not read_keys(settings.serving.serve_keys_file):
            log.warning(
                "no API keys in %s: every request is refused until you add one with "
                "`inferloop serve keys add NAME --scope score`",
                settings.serving.serve_keys_file,
            )
        runtime.online_log.start()
        runtime.coalescer.start()
        runtime.follower.start()
        start_webhook_registration(settings, runtime.follower.registry)
        yield
        # In-flight requests are done (uvicorn waits for them): stop following, score what is
        # queued, write every scored row.
        runtime.follower.stop()
        runtime.coalescer.stop()
        runtime.online_log.close()
        runtime.loader.close()  # last: a load still running cannot hold up writing the rows
        log.info("wrote %d online rows to the lake", runtime.online_log.rows_written)

    app = FastAPI(
        title="inferloop serve",
        description="Scores rows with the model behind @champion, under the dataset's data contract.",
        lifespan=lifespan,
    )
    bearer = HTTPBearer(auto_error=False, description="An API key: `inferloop serve keys add NAME`")

    def key_with(scope: str, presented: str | None) -> ApiKey:
        """The key the request presented (its bearer token), when it has `scope` and is within
        its rate limit."""
        if presented is None:
            raise ServingError(
                401,
                "No API key: send the header 'Authorization: Bearer KEY' "
                "(create a key with `inferloop serve keys add NAME`)",
                {"WWW-Authenticate": "Bearer"},
            )
        key = runtime.keys.find(presented)
        if key is None:
            raise ServingError(
                401,
                "The API key is not valid: use a key `inferloop serve keys add` printed",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if scope not in key.scopes:
            raise ServingError(
                403,
                f"The key {key.name!r} lacks the {scope!r} scope: use a key created with --scope {scope}",
            )
        if (wait := runtime.rate_limiter.retry_after(key.sha256)) is not None:
            runtime.metrics.rate_limited.labels(key.name).inc()
            serving = settings.serving
            raise ServingError(
                429,
                f"The key {key.name!r} sent more than {serving.serve_rate_per_second:g} requests/s "
                f"(burst {serving.serve_rate_burst}): retry after {wait} s, send more rows per request, "
                "or raise INFERLOOP_SERVE_RATE_PER_SECOND",
                {"Retry-After": str(wait)},
            )
        return key

    def require(scope: str):
        # async: a plain function would run in a worker thread, a thread hop per request for a hash.
        async def check(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> ApiKey:
            return key_with(scope, credentials.credentials if credentials else None)

        return check

    @app.exception_handler(ServingError)
    async def serving_error(request: Request, error: ServingError) -> JSONResponse:
        request_id = getattr(request.state, "request_id", None)
        if request.url.path == "/invocations" or request.url.path.endswith("/infer"):
            runtime.metrics.requests.labels(str(error.status)).inc()
        return JSONResponse(
            {"error": error.message, "request_id": request_id},
            status_code=error.status,
            headers=error.headers | ({"X-Request-ID": request_id} if request_id else {}),
        )

    async def invocations(request: Request) -> Response:
        key_with("score", bearer_token(request.headers.get("authorization")))
        max_rows = settings.serving.serve_max_request_rows
        _, scored, ids = await score(
            request, lambda body: parse_body(body, max_rows), lambda columns: columns
        )
        return answered(request, _answer(scored, ids, request.state.request_id), scored, len(ids))

    app.router.add_api_route(
        "/invocations",
        invocations,
        methods=["POST"],
        route_class_override=RequestOnlyRoute,
        dependencies=[Depends(bearer)],  # for the OpenAPI page: the endpoint checks the key itself
        response_model=InvocationResponse,
        responses=ERRORS,
        openapi_extra={"requestBody": REQUEST_BODY},
        summary="Score rows with the model behind @champion",
    )

    @app.post(
        "/v2/models/{model_name}/infer",
        responses=ERRORS | {404: {"model": ErrorResponse, "description": "Not the model served here"}},
        summary="Score rows: the Open Inference Protocol (V2), one input tensor per column",
    )
    async def infer(model_name: str, request: Request, key: ApiKey = Depends(require("score"))) -> Response:
        check_model_name(model_name)
        max_rows, schema = settings.serving.serve_max_request_rows, runtime.contract.schema
        parsed, scored, ids = await score(
            request, lambda body: parse_infer_request(body, max_rows, schema), lambda parsed: parsed.columns
        )
        return answered(
            request, infer_answer(scored, ids, parsed, request.state.request_id), scored, len(ids)
        )

    @app.get(
        "/v2/models/{model_name}", summary="The model's V2 metadata: the version served, inputs, outputs"
    )
    async def metadata(model_name: str, key: ApiKey = Depends(require("score"))) -> dict:
        check_model_name(model_name)
        return model_metadata(model_name, runtime.follower.state().version, runtime.contract.schema)

    def check_model_name(model_name: str) -> None:
        if model_name != settings.registry.model_name:
            raise ServingError(
                404,
                f"No model {model_name!r} here: this endpoint serves {settings.registry.model_name!r} "
                f"(POST /v2/models/{settings.registry.model_name}/infer)",
            )

    async def score(
        request: Request, parse: Callable[[bytes], Any], columns: Callable[[Any], dict[str, list]]
    ) -> tuple[Any, ScoredRequest, list]:
        """A scoring request: its body parsed (`parse`), the rows (`columns` of what it parsed to)
        checked, then typed and scored in a batch with the served model; the parsed body, the scores
        and the ids.
        ServingError when the request cannot be scored."""
        request.state.started = time.perf_counter()
        request.state.request_id = request_id = uuid.uuid4().hex
        serving = settings.serving
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise ServingError(415, f"Content-Type {media_type or '(none)'}: send application/json")

        def read(body: bytes) -> tuple[Any, dict[str, list]]:
            parsed = parse(body)
            return parsed, runtime.contract.checked(columns(parsed))

        runtime.coalescer.active_requests += 1
        try:
            body = await _read_body(request, serving.serve_max_body_bytes)
            try:
                if len(body) <= INLINE_BODY_BYTES:
                    parsed, request_columns = read(body)
                else:
                    parsed, request_columns = await run_in_threadpool(read, body)
            except RequestError as error:
                raise ServingError(error.status, str(error)) from None
            served = runtime.follower.current
            if served is None:
                raise ServingError(503, "No model is loaded yet: see /health/ready", {"Retry-After": "5"})
            if served.degraded and serving.serve_degraded_policy == "reject":
                raise ServingError(
                    503,
                    f"{served.ref.name} v{served.ref.version} is degraded, {served.degraded}: no row is "
                    "scored until a new champion is promoted or the breach closes "
                    "(INFERLOOP_SERVE_DEGRADED_POLICY=reject)",
                    {"Retry-After": str(max(1, round(serving.serve_poll_seconds)))},
                )
            ids = request_columns[settings.dataset.id_column]
            if not runtime.online_log.reserve(len(ids)):
                raise ServingError(
                    503,
                    "The online log's queue is full (the lake is slow or away): retry shortly",
                    {"Retry-After": "1"},
                )
            future = runtime.coalescer.submit(request_columns, len(ids), request_id)
            try:
                scored = await asyncio.wrap_future(future)
            except NoModelLoaded as error:
                raise ServingError(503, str(error), {"Retry-After": "5"}) from None
            return parsed, scored, ids
        finally:
            runtime.coalescer.active_requests -= 1

    def answered(request: Request, answer: dict, scored: ScoredRequest, rows_in: int) -> JSONResponse:
        """A scored request's answer, counted in the metrics."""
        metrics, rejected = runtime.metrics, scored.verdicts.rows_rejected
        metrics.rows.labels("scored").inc(rows_in - rejected)
        metrics.rows.labels("rejected").inc(rejected)
        metrics.requests.labels("200").inc()
        metrics.latency.observe(time.perf_counter() - request.state.started)
        return JSONResponse(
            answer, headers={"X-Request-ID": request.state.request_id, "X-Model-Version": scored.ref.version}
        )

    @app.post(WEBHOOK_PATH, summary="MLflow's registry webhook: check @champion now (signed with the secret)")
    async def mlflow_webhook(request: Request) -> dict:
        secret = settings.serving.serve_webhook_secret
        if secret is None or not secret.get_secret_value():
            raise ServingError(404, "Webhooks are off here: set INFERLOOP_SERVE_WEBHOOK_SECRET (and _URL)")
        body = await _read_body(request, WEBHOOK_MAX_BYTES)
        if problem := webhook_verified(secret.get_secret_value(), request.headers, body):
            raise ServingError(401, f"Not a call of MLflow's webhook: {problem}")
        runtime.follower.wake()
        return {"checking": f"@{settings.registry.champion_alias}"}

    @app.get("/health/live", summary="The process answers")
    async def live() -> dict:
        return {"live": True}

    @app.get("/health/ready", summary="A model is loaded (and whether following @champion is stale)")
    async def ready() -> JSONResponse:
        state = runtime.follower.state()
        body = {"model_name": settings.registry.model_name, **asdict(state)}
        return JSONResponse(body, status_code=200 if state.ready else 503)

    # The V2 health API takes no key, as /health/* do: Kubernetes probes call it (the protocol
    # names it for readinessProbe), and it tells nothing /health/ready does not. GET /v2 names
    # the server's software and version, so it needs `score`, as the model's metadata does.
    @app.get("/v2/health/live", summary="V2: the process answers")
    async def v2_live() -> dict:
        return {"live": True}

    @app.get("/v2/health/ready", summary="V2: a model is loaded (503 until then)")
    async def v2_ready() -> JSONResponse:
        return _ready_answer(readiness(runtime.follower.state()))

    @app.get("/v2/models/{model_name}/ready", summary="V2: this model is loaded (503 until then)")
    async def v2_model_ready(model_name: str) -> JSONResponse:
        check_model_name(model_name)
        return _ready_answer(readiness(runtime.follower.state(), model_name))

    @app.get(
        "/v2/models/{model_name}/versions/{version}/ready",
        summary="V2: this version is the one loaded (503 while another is)",
    )
    async def v2_version_ready(model_name: str, version: str) -> JSONResponse:
        check_model_name(model_name)
        return _ready_answer(readiness(runtime.follower.state(), model_name, version))

    @app.get("/v2", summary="V2: the server's name, version and protocol extensions")
    async def v2_metadata(key: ApiKey = Depends(require("score"))) -> dict:
        return server_metadata()

    @app.get("/metrics", summary="Prometheus metrics (scope admin)")
    async def metrics(key: ApiKey = Depends(require("admin"))) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def bearer_token(authorization: str | None) -> str | None:
    """The key in an `Authorization: Bearer KEY` header, read as `HTTPBearer` reads it, without
    building its pydantic model (2-4 % of a single-row request's server time, with the call)."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    return credentials if scheme.lower() == "bearer" and credentials else None


def _ready_answer(answer: dict) -> JSONResponse:
    return JSONResponse(answer, status_code=200 if answer["ready"] else 503)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServingError(413, _too_large(int(declared), limit))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ServingError(413, _too_large(len(body), limit))
    return bytes(body)


def _too_large(size: int, limit: int) -> str:
    return (
        f"The request body has {size} bytes or more, above INFERLOOP_SERVE_MAX_BODY_BYTES={limit}: split it"
    )


def _answer(scored: ScoredRequest, ids: list, request_id: str) -> dict[str, Any]:
    verdicts = scored.verdicts
    scores, labels = scored.scores.tolist(), scored.labels.tolist()
    predictions, k = [], 0
    for position, row_id in enumerate(ids):
        failed = verdicts.failed.get(position)
        if failed is None:
            predictions.append({"id": row_id, "score": scores[k], "label": labels[k]})
            k += 1
        else:
            predictions.append(
                {"id": row_id, "error": f"failed {'; '.join(failed)}", "failed_checks": failed}
            )
    # MLflow's response key (keyword form: a `predictions` string literal reads as a lake path)
    return dict(
        predictions=predictions,
        model_name=scored.ref.name,
        model_version=scored.ref.version,
        request_id=request_id,
        rows_in=len(ids),
        rows_scored=k,
        rows_rejected=len(verdicts.failed),
        **({"degraded": scored.degraded} if scored.degraded else {}),
    )
