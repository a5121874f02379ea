"""Every MLflow call of inferloop: one client per process and tracking URI, one error translator.

The registry is the source of truth for models: code asks for an alias, resolves it once to a
concrete version (`ModelVersionRef`) and records that version everywhere it goes.

MLflow is imported inside the functions, so a serving process or a notebook can import this module
(and the refs it returns) without paying for MLflow until it talks to the registry. Every call
names its tracking URI explicitly (client methods, `tracking_uri=`); only logging a model needs
MLflow's process-wide URI, set in `_fluent_api`, because `log_model` works on the active run.

Errors: `RegistryUnavailable` (the server is down or failing), `ModelNotFound` and
`RegistryPermissionDenied`, told apart by exception type, MLflow error code or HTTP status,
all `RegistryError`s that keep the MLflow error as their cause.
"""

import json
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferloop.core.errors import InferloopError

NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
PERMISSION_CODES = frozenset({"PERMISSION_DENIED", "UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED"})
UNAVAILABLE_CODES = frozenset({"TEMPORARILY_UNAVAILABLE", "DEADLINE_EXCEEDED"})
THRESHOLD_TAG = "inferloop.decision_threshold"  # the version tag holding its decision threshold
# The version tag holding the monitor's open breach of it (JSON: since, reasons); absent: none open.
BREACH_TAG = "inferloop.breach"


class RegistryError(InferloopError, RuntimeError):
    """The registry is unreachable, refuses access or lacks what was asked; the message says
    what to do."""


class RegistryUnavailable(RegistryError):
    """The tracking server cannot be reached or keeps failing (after MLflow's retries)."""


class ModelNotFound(RegistryError):
    """The registered model, version, alias, run or artifact does not exist."""


class RegistryPermissionDenied(RegistryError):
    """The tracking server refused the credentials or the permission."""


@dataclass(frozen=True)
class ModelVersionRef:
    """One concrete registered model version, as resolved from an alias."""

    name: str
    version: str
    run_id: str
    alias: str | None = None
    # Chosen at training (version tag THRESHOLD_TAG); None for versions registered without one.
    decision_threshold: float | None = None
    # The monitor's confirmed breach of this version, while open (BREACH_TAG), described.
    open_breach: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def threshold(self, default: float) -> float:
        """The score at or above which this version labels a row positive: its own threshold,
        or `default` (the settings' decision_threshold) for a version registered without one."""
        return default if self.decision_threshold is None else self.decision_threshold


def recorded_breach(tags: dict[str, str]) -> str | None:
    """The open breach a version's tags record, described, if any."""
    value = tags.get(BREACH_TAG)
    if not value:
        return None
    try:
        breach = json.loads(value)
        return (
            f"breach confirmed on {breach['since']}: {'; '.join(breach['reasons']) or 'no reason recorded'}"
        )
    except (ValueError, KeyError, TypeError):  # edited by hand: still a breach someone opened
        return f"breach tag {BREACH_TAG} set by hand: {value[:200]}"


def recorded_threshold(tags: dict[str, str]) -> float | None:
    """The decision threshold a version's tags record, if any."""
    value = tags.get(THRESHOLD_TAG)
    return None if value is None else float(value)


@dataclass(frozen=True)
class RunRecord:
    """What a run logged: its params, latest metric values and tags."""

    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    timestamp_ms: int
    step: int


@dataclass
class TrainingData:
    """The frame a model was fitted on, logged as the run's training input (lineage)."""

    frame: Any  # pandas DataFrame
    source_uri: str
    target_column: str
    name: str
    digest: str


@dataclass
class ModelRecord:
    """Everything logged with one trained model; the registry does not know how it was trained."""

    model: Any  # a fitted scikit-learn estimator
    input_example: Any  # pandas DataFrame of model inputs
    training_data: TrainingData
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    version_tags: dict[str, str] = field(default_factory=dict)  # on the registered version
    json_artifacts: dict[str, dict] = field(default_factory=dict)  # artifact path -> content
    figures: dict[str, Any] = field(default_factory=dict)  # artifact path -> matplotlib figure
    predict_fn: str = "predict_proba"  # what the model's pyfunc (and signature) predicts with
    skops_trusted_types: list[str] = field(default_factory=list)
    extra_files: list[str] = field(default_factory=list)
    code_paths: list[str] = field(default_factory=list)
    pip_requirements: list[str] = field(default_factory=list)


_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def client_for(tracking_uri: str):
    """The process's one `MlflowClient` for `tracking_uri` (its registry at the same URI)."""
    with _clients_lock:
        client = _clients.get(tracking_uri)
        if client is None:
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            _clients[tracking_uri] = client
        return client


def _fluent_api(tracking_uri: str) -> None:
    """Point MLflow's process-wide (fluent) API at `tracking_uri`: `mlflow.start_run` and
    `log_model` (with its registration) take no URI. The only place inferloop sets it."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and what it was raised from or during (MLflow wraps a refused connection in an
    MlflowException raised while handling the requests error, without `from`)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _http_status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _unauthenticated(error: BaseException) -> bool:
    """Credentials missing or wrong (HTTP 401), as opposed to a permission not granted (403)."""
    return any(
        getattr(link, "error_code", None) in ("UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED")
        or _http_status(link) == 401
        for link in _causes(error)
    )


def error_kind(error: BaseException, missing: frozenset[str] = NOT_FOUND_CODES) -> type[RegistryError] | None:
    """Which `RegistryError` `error` is, by MLflow error code, HTTP status or exception type;
    None when it is not a registry error (a bug, a local problem: left as it is). `missing` are
    the MLflow error codes that mean "not found" for the call at hand."""
    import requests
    import urllib3
    from mlflow.exceptions import MlflowException

    for link in _causes(error):
        if isinstance(link, MlflowException):
            if link.error_code in PERMISSION_CODES:
                return RegistryPermissionDenied
            if link.error_code in missing:
                return ModelNotFound
            if link.error_code in UNAVAILABLE_CODES:
                return RegistryUnavailable
        elif isinstance(link, requests.HTTPError) and (status := _http_status(link)) is not None:
            if status in (401, 403):
                return RegistryPermissionDenied
            if status == 404:
                return ModelNotFound
            if status >= 500:
                return RegistryUnavailable
        elif isinstance(
            link,
            requests.ConnectionError
            | requests.Timeout
            | requests.exceptions.RetryError  # 5xx answers until MLflow's retries ran out
            | urllib3.exceptions.HTTPError
            | ConnectionError,
        ):
            return RegistryUnavailable
    if isinstance(error, MlflowException):
        return RegistryError
    return None


def registry_error(
    error: BaseException, tracking_uri: str, action: str, missing: frozenset[str] = NOT_FOUND_CODES
) -> RegistryError | None:
    """The `RegistryError` (with what to do) that `error`, raised trying to `action`, means."""
    kind = error_kind(error, missing)
    if kind is None:
        return None
    detail = getattr(error, "message", None) or str(error)
    where = f"MLflow at {tracking_uri}"
    if kind is RegistryUnavailable:
        return RegistryUnavailable(
            f"{where} is unreachable: start it with `make up` "
            "or point INFERLOOP_TRACKING_URI at a running tracking server"
        )
    if kind is RegistryPermissionDenied:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if user is None:
            return RegistryPermissionDenied(
                f"{where} refused to {action} without credentials: set MLFLOW_TRACKING_USERNAME "
                "and MLFLOW_TRACKING_PASSWORD to an MLflow account (see docs/production.md)"
            )
        if _unauthenticated(error):
            return RegistryPermissionDenied(
                f"{where} rejected the credentials of user {user!r} (trying to {action}): "
                "check MLFLOW_TRACKING_PASSWORD (see docs/production.md)"
            )
        return RegistryPermissionDenied(
            f"{where} refused user {user!r} permission to {action}: ask an MLflow admin to grant "
            f"{user} the permission on it (READ to read it, EDIT to change it, MANAGE to delete "
            "aliases or versions)"
        )
    if kind is ModelNotFound:
        return ModelNotFound(f"{where} could not {action}: not found ({detail})")
    return RegistryError(f"{where} failed to {action}: {detail}")


@contextmanager
def translated_errors(tracking_uri: str, action: str, missing: frozenset[str] = NOT_FOUND_CODES):
    """Turn MLflow and HTTP errors raised inside into `RegistryError`s, keeping the cause."""
    try:
        yield
    except RegistryError:
        raise
    except Exception as error:
        translated = registry_error(error, tracking_uri, action, missing)
        if translated is None:
            raise
        raise translated from error


# One model load at a time in a process: skops rebuilds a model through `ast`, whose recursion
# bookkeeping CPython 3.11 shares between threads (two promotions at once in one process failed
# with "SystemError: AST constructor recursion depth mismatch", CPython gh-106905), and MLflow
# edits sys.path while it loads. Loads hold the GIL anyway: nothing is lost by taking turns.
MODEL_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class Registry:
    """The MLflow tracking server and model registry at `tracking_uri`, for the model `model_name`.

    `artifact_root` is where experiments keep their artifacts when the store is local (a SQLite
    or file URI); a tracking server decides that itself.
    """

    tracking_uri: str
    model_name: str
    artifact_root: Path | None = None

    @property
    def client(self):
        return client_for(self.tracking_uri)

    def translated(self, action: str, missing: frozenset[str] = NOT_FOUND_CODES):
        return translated_errors(self.tracking_uri, action, missing)

    @property
    def is_local(self) -> bool:
        return not self.tracking_uri.startswith(("http://", "https://"))

    # -- registered versions and aliases ------------------------------------------------------

    def find_alias(self, alias: str) -> ModelVersionRef | None:
        """The version behind `alias`, or None when the model or the alias does not exist."""
        name = self.model_name
        # A missing alias is INVALID_PARAMETER_VALUE in MLflow's SQL store, a missing model
        # RESOURCE_DOES_NOT_EXIST.
        try:
            with self.translated(f"resolve {name}@{alias}", NOT_FOUND_CODES | {"INVALID_PARAMETER_VALUE"}):
                found = self.client.get_model_version_by_alias(name, alias)
        except ModelNotFound:
            return None
        return ModelVersionRef(
            name=name,
            version=str(found.version),
            run_id=found.run_id,
            alias=alias,
            decision_threshold=recorded_threshold(found.tags),
            open_breach=recorded_breach(found.tags),
        )

    def get_version(self, version: str) -> ModelVersionRef:
        """The registered `version` of the model; ModelNotFound when it does not exist."""
        name = self.model_name
        with self.translated(f"read {name} v{version}", NOT_FOUND_CODES | {"INVALID_PARAMETER_VALUE"}):
            found = self.client.get_model_version(name, str(version))
        return ModelVersionRef(
            name=name,
            version=str(found.version),
            run_id=found.run_id,
            decision_threshold=recorded_threshold(found.tags),
            open_breach=recorded_breach(found.tags),
        )

    def version_tags(self, version: str) -> dict[str, str]:
        """The tags on a registered version (decisions are recorded there)."""
        with self.translated(f"read {self.model_name} v{version}"):
            return dict(self.client.get_model_version(self.model_name, str(version)).tags)

    def set_alias(self, alias: str, version: str) -> None:
        with self.translated(f"set {self.model_name}@{alias} to v{version}"):
            self.client.set_registered_model_alias(self.model_name, alias, str(version))

    def delete_alias(self, alias: str) -> None:
        with self.translated(f"delete {self.model_name}@{alias}"):
            self.client.delete_registered_model_alias(self.model_name, alias)

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        with self.translated(f"tag {self.model_name} v{version}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(self.model_name, str(version), key, value)

    def untag_version(self, version: str, key: str) -> None:
        with self.translated(f"untag {self.model_name} v{version}"):
            self.client.delete_model_version_tag(self.model_name, str(version), key)

    def _download(self, artifact_uri: str, destination: str | None = None) -> str:
        """A local path of the artifact (in a local store itself, unless `destination`)."""
        from mlflow.artifacts import download_artifacts

        return download_artifacts(
            artifact_uri=artifact_uri,
            dst_path=destination,
            tracking_uri=self.tracking_uri,
            registry_uri=self.tracking_uri,
        )

    def load_model(self, ref: ModelVersionRef):
        """The scikit-learn pipeline of a concrete version (predict_proba at full speed)."""
        import mlflow.sklearn

        with self.translated(f"load {ref.name} v{ref.version}"), tempfile.TemporaryDirectory() as scratch:
            # `models:/` URIs resolve through MLflow's process-wide registry URI: ask this
            # registry where the version's files are, and download them from there. Always into
            # a scratch dir that is gone after loading: MLflow puts the model's code dir (a copy of
            # `inferloop.core.category_codes` alone) first on sys.path, and a lasting copy would
            # hide the installed inferloop from processes started later (Dask workers).
            location = self.client.get_model_version_download_uri(ref.name, ref.version)
            path = self._download(location, scratch)
            with MODEL_LOAD_LOCK:
                return mlflow.sklearn.load_model(path)

    def input_schema(self, ref: ModelVersionRef) -> list[dict]:
        """The model's input signature as column dicts (empty when it was logged without one)."""
        from mlflow.models import Model

        with self.translated(f"read the signature of {ref.name} v{ref.version}"):
            location = self.client.get_model_version_download_uri(ref.name, ref.version)
            with tempfile.TemporaryDirectory() as scratch:
                signature = Model.load(self._download(f"{location}/MLmodel", scratch)).signature
        return signature.inputs.to_dict() if signature else []

    # -- runs and experiments -----------------------------------------------------------------

    def run(self, run_id: str) -> RunRecord:
        with self.translated(f"read run {run_id}"):
            data = self.client.get_run(run_id).data
        return RunRecord(params=dict(data.params), metrics=dict(data.metrics), tags=dict(data.tags))

    def load_run_dict(self, run_id: str, path: str) -> dict:
        """A JSON artifact of a run."""
        with self.translated(f"read {path} of run {run_id}"), tempfile.TemporaryDirectory() as scratch:
            return json.loads(Path(self.client.download_artifacts(run_id, path, scratch)).read_text())

    def log_run_files(self, run_id: str, local_dir: Path, artifact_path: str) -> None:
        """Every file of `local_dir` as artifacts of a run, under `artifact_path`."""
        with self.translated(f"log {artifact_path} to run {run_id}"):
            self.client.log_artifacts(run_id, str(local_dir), artifact_path)

    def download_run_file(self, run_id: str, path: str, destination: Path) -> Path:
        """A run's artifact, downloaded into `destination`."""
        with self.translated(f"read {path} of run {run_id}"):
            return Path(self.client.download_artifacts(run_id, path, str(destination)))

    def version_record(self, version: str) -> dict[str, Any]:
        """A registered version as MLflow records it: run, creation time (ms), aliases, tags."""
        with self.translated(f"read {self.model_name} v{version}"):
            found = self.client.get_model_version(self.model_name, str(version))
        return {
            "run_id": found.run_id,
            "created_ms": found.creation_timestamp,
            "aliases": sorted(getattr(found, "aliases", None) or []),
            "tags": dict(found.tags),
        }

    def training_inputs(self, run_id: str) -> list[dict[str, str]]:
        """The datasets a run logged as inputs (`mlflow.log_input`): name, digest, source, context."""
        with self.translated(f"read the inputs of run {run_id}"):
            inputs = self.client.get_run(run_id).inputs
        return [
            {
                "name": found.dataset.name,
                "digest": found.dataset.digest,
                "source": found.dataset.source,
                "context": next((t.value for t in found.tags if t.key == "mlflow.data.context"), ""),
            }
            for found in (inputs.dataset_inputs if inputs else [])
        ]

    def run_artifact_exists(self, run_id: str, path: str) -> bool:
        directory, _, _ = path.rpartition("/")
        with self.translated(f"list the artifacts of run {run_id}"):
            return path in {f.path for f in self.client.list_artifacts(run_id, directory or None)}

    def log_run_text(self, run_id: str, text: str, path: str) -> str:
        """Write `text` as the run's artifact `path` (replacing it); its `runs:/` URI."""
        with self.translated(f"write {path} of run {run_id}"):
            self.client.log_text(run_id, text, path)
        return f"runs:/{run_id}/{path}"

    def ensure_experiment(self, name: str) -> str:
        """The experiment's id, creating it (with artifacts under `artifact_root` when local)."""
        with self.translated(f"open the experiment {name!r}"):
            experiment = self.client.get_experiment_by_name(name)
            if experiment is not None:
                return experiment.experiment_id
            location = (self.artifact_root / name).as_uri() if self.is_local and self.artifact_root else None
            return self.client.create_experiment(name, artifact_location=location)

    def find_or_create_run(self, experiment_name: str, run_name: str, tags: dict[str, str]) -> str:
        """The id of the run of `experiment_name` carrying `tags`, created (finished) if absent:
        a run that collects one point a day never "ends", so it is marked finished and the UI
        does not show it as running forever (MLflow still accepts metrics on a finished run)."""
        experiment_id = self.ensure_experiment(experiment_name)
        with self.translated(f"find or create the run {run_name!r}"):
            found = self.client.search_runs(
                [experiment_id],
                filter_string=" and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items()),
                max_results=1,
            )
            if found:
                return found[0].info.run_id
            run_id = self.client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
            self.client.set_terminated(run_id)
        return run_id

    def log_metric_points(self, run_id: str, points: list[MetricPoint]) -> None:
        from mlflow.entities import Metric

        with self.translated(f"log metrics to run {run_id}"):
            self.client.log_batch(
                run_id, metrics=[Metric(p.name, p.value, p.timestamp_ms, p.step) for p in points]
            )

    def log_model_version(
        self,
        experiment_name: str,
        run_name: str,
        record: ModelRecord,
        alias: str,
        run_tags: dict[str, str] | None = None,
    ) -> ModelVersionRef:
        """Log `record` in a new run of `experiment_name`, register it as a new version of the
        model and point `alias` at that version."""
        import mlflow
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.models import infer_signature

        experiment_id = self.ensure_experiment(experiment_name)
        with self.translated(f"log and register a version of {self.model_name}"):
            client = self.client
            run_id = client.create_run(experiment_id, run_name=run_name, tags=run_tags or {}).info.run_id
            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in record.metrics.items()],
                params=[Param(k, str(v)) for k, v in record.params.items()],
                tags=[RunTag(k, str(v)) for k, v in record.tags.items()],
            )
            for path, content in record.json_artifacts.items():
                client.log_dict(run_id, content, path)
            for path, figure in record.figures.items():
                client.log_figure(run_id, figure, path)
            data = record.training_data
            with warnings.catch_warnings():
                # MLflow registers its local-file dataset source twice (schemes "" and "file")
                # and warns that a file:// URI matches both: the same class either way.
                warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
                source = mlflow.data.from_pandas(
                    data.frame,
                    source=data.source_uri,
                    targets=data.target_column,
                    name=data.name,
                    digest=data.digest,
                )
            example = record.input_example
            signature = infer_signature(example, getattr(record.model, record.predict_fn)(example))
            # The run is resumed by id in this thread: MLflow's active run is thread-local and
            # Prefect runs tasks in worker threads.
            _fluent_api(self.tracking_uri)
            # MLflow prints "Successfully registered model" / "Created version" itself; the
            # train flow says what was registered, once.
            with mlflow.start_run(run_id=run_id), _mlflow_prints_off(), warnings.catch_warnings():
                # MLflow hints that integer columns cannot hold missing values under its schema
                # enforcement; inferloop's scoring checks rows against the dataset spec instead.
                warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
                mlflow.log_input(source, context="training")
                info = mlflow.sklearn.log_model(
                    record.model,
                    name="model",
                    signature=signature,
                    input_example=example,
                    pyfunc_predict_fn=record.predict_fn,
                    skops_trusted_types=record.skops_trusted_types,
                    registered_model_name=self.model_name,
                    extra_files=record.extra_files,
                    code_paths=record.code_paths,
                    pip_requirements=record.pip_requirements,
                )
            version = str(info.registered_model_version)
            self.tag_version(version, record.version_tags)
            client.set_registered_model_alias(self.model_name, alias, version)
        return ModelVersionRef(
            name=self.model_name,
            version=version,
            run_id=run_id,
            alias=alias,
            decision_threshold=recorded_threshold(record.version_tags),
        )


def _mlflow_prints_off():
    """MLflow's own switch for its event prints, counted: the contexts MLflow opens inside
    `log_model` switch them back on at their exit unless an outer one still holds them off."""
    from mlflow.utils.autologging_utils.logging_and_warnings import (
        MlflowEventsAndWarningsBehaviorGlobally,
    )

    return MlflowEventsAndWarningsBehaviorGlobally(
        disable_event_logs=True, disable_warnings=False, reroute_warnings=False
    )
