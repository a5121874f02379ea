"""Every knob, in groups, with defaults that work on a fresh machine.

Each group is the part of the configuration one stage needs: a task receives its group, not the
whole object. Every knob is still one environment variable, `INFERLOOP_<NAME>` (the names the
README documents), whatever group it is in. Values come from (highest first) overrides passed to
`load_settings` (a flow's `overrides` parameter, a CLI option), `INFERLOOP_*` environment
variables, defaults. A bad value fails at load, naming the variable.
"""

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from inferloop.core.errors import InferloopError

REPO_ROOT = Path(__file__).resolve().parents[2]


class SettingsError(InferloopError, ValueError):
    """A setting has an invalid value; the message names the environment variable to fix."""


class Group(BaseSettings):
    """A group of knobs read from `INFERLOOP_<FIELD>` variables."""

    model_config = SettingsConfigDict(env_prefix="INFERLOOP_", extra="forbid", frozen=True)


class ProjectSettings(Group):
    """Where inferloop keeps its state and which dataset it runs on."""

    state_dir: Path = Field(Path(".inferloop"), description="Local state: databases, lake, logs")
    dataset_spec: Path = Field(
        Path("datasets/transactions.yaml"), description="Dataset spec YAML (columns, label, time)"
    )


class LakeSettings(Group):
    """The data lake: where features, labels, quarantine, predictions and reports live."""

    storage_uri: str = Field("", description="Data lake root: file:///path or s3://bucket/prefix")
    s3_endpoint_url: str | None = Field(None, description="S3 API endpoint for non-AWS S3")
    s3_region: str = Field("us-east-1", description="S3 region")
    s3_max_attempts: int = Field(
        4,
        ge=1,
        le=20,
        description="Attempts per S3 request before a clear failure; retries back off exponentially "
        "with jitter (waits up to 1, 2, 4 ... s, capped at 20 s: 4 attempts wait at most 7 s)",
    )

    # Retention (`inferloop retention`, the lake-retention deployment): day partitions older
    # than this many days are deleted. None (unset, "" or "forever"): kept forever.
    retain_features_days: int | None = Field(None, description="Days of feature partitions kept")
    retain_predictions_days: int | None = Field(None, description="Days of batch predictions kept")
    retain_quarantine_days: int | None = Field(None, description="Days of gate quarantine kept")
    retain_online_days: int | None = Field(None, description="Days of online predictions kept")

    @field_validator(
        "retain_features_days",
        "retain_predictions_days",
        "retain_quarantine_days",
        "retain_online_days",
        mode="before",
    )
    @classmethod
    def _forever(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "none", "forever"):
            return None
        return value

    @field_validator(
        "retain_features_days", "retain_predictions_days", "retain_quarantine_days", "retain_online_days"
    )
    @classmethod
    def _at_least_a_day(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("must be a number of days, at least 1 (unset or 'forever': keep everything)")
        return value

    @field_validator("storage_uri")
    @classmethod
    def _storage_scheme(cls, value: str) -> str:
        if value and not value.startswith(("file://", "s3://")):
            raise ValueError("must start with file:// or s3:// (e.g. s3://bucket/prefix)")
        return value.rstrip("/")

    @field_validator("s3_endpoint_url")
    @classmethod
    def _endpoint_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


# The URI schemes MLflow 3's tracking and registry stores accept (a database URI may name its
# driver: postgresql+psycopg2://).
MLFLOW_URI_SCHEMES = (
    "file",
    "sqlite",
    "http",
    "https",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
    "databricks-uc",
    "uc",
)


class RegistrySettings(Group):
    """The MLflow tracking server and model registry."""

    tracking_uri: str = Field("", description="MLflow tracking URI (default: SQLite in state_dir)")
    mlflow_artifact_root: Path | None = Field(
        None, description="Artifacts of a local (non-HTTP) tracking store (default: <state_dir>/mlartifacts)"
    )
    experiment_name: str = Field("inferloop-training", description="MLflow training experiment")
    monitoring_experiment_name: str = Field(
        "inferloop-monitoring", description="MLflow experiment of monitoring metrics (step = day)"
    )
    model_name: str = Field("", description="Registered model name (default: <dataset>-classifier)")
    champion_alias: str = Field("champion", description="Alias of the production model")
    challenger_alias: str = Field("challenger", description="Alias of the newest candidate")
    previous_champion_alias: str = Field("previous_champion", description="Alias rollback restores")

    @field_validator("tracking_uri")
    @classmethod
    def _tracking_scheme(cls, value: str) -> str:
        """MLflow reports an unknown scheme only when first used (after a training run's gate
        and fit): fail at load instead."""
        scheme, colon, _ = value.partition(":")
        if not colon or "/" in scheme:  # the default (empty), or a local path
            return value
        if scheme.split("+")[0].lower() not in MLFLOW_URI_SCHEMES:
            raise ValueError(
                f"{scheme!r} is not a scheme MLflow can track to: give http(s)://host:port, "
                "sqlite:///path/mlflow.db, file:///path or a database URI (postgresql://...)"
            )
        if scheme.lower() in ("http", "https") and not urlparse(value).netloc:
            raise ValueError(f"{value!r} names no server: give e.g. http://127.0.0.1:5000")
        return value


class GateSettings(Group):
    """The data-quality gate."""

    expectations_dir: Path = Field(
        REPO_ROOT / "expectations", description="GX project holding the committed suites"
    )
    gx_runtime_dir: Path | None = Field(
        None, description="Where GX writes validation results and Data Docs (default: <state_dir>/gx)"
    )
    max_quarantine_share: float = Field(
        0.1, ge=0.0, le=1.0, description="A batch with a larger share of bad rows is refused"
    )
    gx_sample_rows: int = Field(
        10_000, ge=100, description="Rows of each file GX validates (schema, types, Data Docs)"
    )
    personal_data_key: SecretStr | None = Field(
        None,
        description="Key of the HMAC-SHA256 that replaces the values of the spec's pii columns in "
        "quarantine files (default: generated once into personal_data_key_file)",
    )
    personal_data_key_file: Path | None = Field(
        None, description="Where a generated personal-data key is kept (default: <state>/personal_data.key)"
    )
    gx_scope: Literal["partition", "schema"] = Field(
        "partition",
        description="partition: GX validates every partition (and updates Data Docs); schema: once "
        "per file schema per process, for replays of long histories (row checks still cover every row)",
    )


class TrainingSettings(Group):
    """Which labelled days a model is fitted and held out on."""

    train_window_days: int = Field(7, ge=2, description="Days of labelled data a model trains on")
    min_train_rows: int = Field(
        200,
        ge=0,
        description="Labelled rows a window needs to train on; a window that holds fewer (or too few "
        "to hold out min_holdout_rows) takes back the newest earlier partitions until it has them",
    )
    # A boosted model fitted on a few hundred rows changes a lot from one fit to the next; a few
    # thousand steady it. Only feeds of small partitions reach further back than
    # train_window_days for it (measured on Elec2's 48-row days: docs/benchmarks.md).
    train_window_rows: int = Field(
        2000,
        ge=0,
        description="Labelled rows a window widens to: while its train_window_days hold fewer, it takes "
        "back earlier partitions as far as the feed goes (unlike min_train_rows, fewer still trains)",
    )
    holdout_days: int = Field(1, ge=1, description="Latest days of the window held out for metrics")
    min_holdout_rows: int = Field(
        200, ge=0, description="Hold out more days (up to half the window) until they hold this many rows"
    )
    # A ROC AUC on 3 positives is a coin flip however many negatives surround them. Holdouts do
    # not grow for the rarer class: where it has all but vanished (a label that stopped being
    # used), a holdout grown to half the window left the validation fit only the old concept and
    # every challenger lost (measured: docs/benchmarks.md, Seattle weather by week).
    min_class_rows: int = Field(
        10,
        ge=0,
        description="Rows of the rarer class the ROC AUC floor and a class-weighing monitored metric "
        "(roc_auc, pr_auc, balanced_accuracy, f1) need: fewer, and the floor is not judged (a first "
        "champion waits), the monitor gives no verdict on that metric, and promotion and hindsight "
        "compare on the probabilities' score (1 - Brier) on every row",
    )
    refit_on_full_window: bool = Field(
        True, description="After validation, refit on the whole window so the model sees the newest labels"
    )
    optimised_artifact: bool = Field(
        True,
        description="At registration, compile the model to a shared library (treelite, needs a C compiler) "
        "and mark it usable if it passes the parity gate",
    )
    # The booster's size: fewer trees or leaves predict faster; a smaller model is promoted and
    # compiled like any other. 100 trees, not 200: early stopping stopped the generated feeds'
    # models at 52-83 trees anyway, and where it did not (Elec2) 100 scored a higher ROC AUC and
    # the compiled model about 2x faster (benchmarks/model_size.py, docs/benchmarks.md "Model size").
    model_max_iter: int = Field(
        100, ge=1, le=10_000, description="Most trees the model grows (early stopping may stop sooner)"
    )
    model_max_leaf_nodes: int = Field(31, ge=2, le=4_096, description="Most leaves per tree")
    # Each window's tree size is chosen between these on the window's newest rows: windows of a
    # few thousand noisy rows overfit 31-leaf trees, intricate patterns need them (docs/benchmarks.md, session
    # 19: "each window chooses its tree size").
    model_min_leaf_nodes: int = Field(
        4,
        ge=2,
        le=4_096,
        description="Fewest leaves per tree the capacity search tries (doubling up to "
        "model_max_leaf_nodes, judged on the window's newest rows); at or above model_max_leaf_nodes: "
        "no search",
    )


class ScoringSettings(Group):
    """Batch scoring."""

    decision_threshold: float = Field(
        0.5,
        gt=0.0,
        lt=1.0,
        description="Score at or above which label=1, for every version under threshold_policy=fixed, "
        "and for versions registered without a threshold of their own",
    )
    threshold_policy: Literal["fitted", "fixed"] = Field(
        "fitted",
        description="fitted: each version gets its own threshold at training when monitor_metric is "
        "balanced_accuracy (its training labels' positive rate) or f1 (searched on its held-out rows); "
        "accuracy and the ranking metrics keep decision_threshold. "
        "fixed: decision_threshold for every version",
    )
    score_batch_rows: int = Field(100_000, ge=1_000, description="Rows per streamed scoring chunk")


class PromotionSettings(Group):
    """When `@champion` may move."""

    promotion_mode: Literal["auto", "approve"] = Field(
        "auto", description="approve: a person approves each promotion in the Prefect UI"
    )
    min_roc_auc: float = Field(0.6, ge=0.0, le=1.0, description="A model below this is never champion")
    min_improvement: float = Field(
        0.0,
        ge=0.0,
        description="Gain of the monitored metric over the champion, on the same rows, a challenger needs",
    )
    max_metric_regression: float = Field(
        0.02,
        ge=0.0,
        description="How far below the champion the lower end of the comparison's 80 % interval may go",
    )
    min_promotion_rows: int = Field(
        200, ge=1, description="Fewer labelled rows to compare challenger and champion on: no promotion"
    )
    promotion_window_days: int = Field(2, ge=1, description="Recent labelled days promotion compares on")
    hindsight_action: Literal["rollback", "report"] = Field(
        "report",
        description="A promotion that did clearly worse than the version it replaced, on the rows that "
        "followed: roll back, or only report it",
    )
    second_look: bool = Field(
        True,
        description="A challenger rejected by checks on its compared rows alone is compared again, once, "
        "on the first min_promotion_rows labelled rows after its window",
    )
    approval_timeout_seconds: int = Field(3600, ge=10, description="How long approve mode waits")


class MonitoringSettings(Group):
    """Drift and delayed-label performance, and what counts as a breach."""

    drift_psi_threshold: float = Field(0.2, gt=0.0, description="PSI above which a feature has drifted")
    min_drift_rows: int = Field(
        200,
        ge=1,
        description="Scored rows a drift verdict needs: a smaller partition is pooled with the recent "
        "ones the same version scored (at most drift_pool_partitions); fewer even then: no verdict",
    )
    # A bound, not a size: a pool stops once it holds min_drift_rows. 30 lets feeds of 24-row days
    # or 7-row weeks be measured at all (docs/benchmarks.md, session 15).
    drift_pool_partitions: int = Field(
        30,
        ge=1,
        description="Most partitions a drift verdict pools, the monitored one included (1: never pool); "
        "never further back than INFERLOOP_RETAIN_FEATURES_DAYS keeps features",
    )
    # Real feeds drift all the time (Elec2's prices flag on 95 % of 5-day pools) while the model
    # keeps its accuracy; with enough labels the metric is the direct evidence, drift the proxy.
    drift_trigger: Literal["until_labelled", "always"] = Field(
        "until_labelled",
        description="When drift is a breach: until_labelled, only while too few labelled rows give a "
        "performance verdict (otherwise it is reported, not acted on); always",
    )
    monitor_metric: Literal["roc_auc", "pr_auc", "accuracy", "balanced_accuracy", "f1"] = Field(
        "roc_auc", description="Metric on delayed labels that decides degradation"
    )
    max_metric_drop: float = Field(
        0.05, ge=0.0, description="Drop of the monitored metric below the champion's validation value"
    )
    performance_window_days: int = Field(
        7,
        ge=1,
        description="Event days of labelled predictions the rolling metric covers; where they hold "
        "fewer than min_labelled_rows, the champion's earlier ones are taken back until they do",
    )
    min_labelled_rows: int = Field(200, ge=1, description="Fewer labelled rows than this: no verdict")
    performance_trigger: Literal["change", "drop"] = Field(
        "change",
        description="change: a statistically detected rise of the champion's losses since deployment "
        "(ADWIN); drop: the rolling metric falls max_metric_drop below the validation value",
    )
    change_delta: float = Field(
        0.002, gt=0.0, lt=1.0, description="ADWIN's confidence: smaller needs more evidence of a change"
    )
    change_max_rows_per_partition: int = Field(
        2000, ge=10, description="Labelled rows per partition the change detector samples"
    )
    calibration_alpha: float = Field(
        0.001, gt=0.0, lt=1.0, description="Significance of a label rate the predictions cannot explain"
    )


class RetrainSettings(Group):
    """When a confirmed breach retrains, and the storm guard."""

    confirm_days: int = Field(2, ge=1, description="Consecutive days a breach must last to act on it")
    retrain_cooldown_days: int = Field(3, ge=0, description="Days after a retrain before the next one")
    max_retrains_per_day: int = Field(1, ge=1, description="Retrains allowed per (logical) day")


# The periodic baselines a replay runs unless told: every partition, and the two schedules people
# retrain at for the feed's partition (a day and a week of hours, a week and a month of days, a
# month and a quarter of weeks, a quarter and a year of months), counted in stored partitions as
# every baseline is: on a feed with gaps, every 24 hours is every 24 hours that hold rows.
BASELINES_EVERY = {"hour": [1, 24, 168], "day": [1, 7, 30], "week": [1, 4, 13], "month": [1, 3, 12]}


class ReplaySettings(Group):
    """Evaluating the loop on history: what a replay compares it with."""

    # NoDecode: the variable is parsed below, so "7", "1,7,30" and "[1, 7, 30]" all work and a bad
    # value fails naming the variable instead of in pydantic-settings' JSON decoding.
    baseline_every: Annotated[list[int] | None, NoDecode] = Field(
        None,
        description="Periodic baselines a replay compares the loop with: retrain every k partitions "
        "(default by the feed's partition: "
        + "; ".join(f"{unit} {', '.join(map(str, every))}" for unit, every in BASELINES_EVERY.items())
        + ")",
    )

    def baselines_for(self, partition: str) -> list[int]:
        """The k of each periodic baseline: `baseline_every` ([] for none), else those of the
        feed's `partition` (BASELINES_EVERY)."""
        return BASELINES_EVERY[partition] if self.baseline_every is None else self.baseline_every

    @field_validator("baseline_every", mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():  # set but blank: the default, not "none"
            return None
        if isinstance(value, str):
            text = value.strip().removeprefix("[").removesuffix("]")
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("baseline_every")
    @classmethod
    def _at_least_one_partition(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if any(k < 1 for k in value):
            raise ValueError("every k must be at least 1 (k=1: retrain every partition)")
        return sorted(set(value))


class RunnerSettings(Group):
    """Where a flow's tasks run."""

    task_runner: Literal["thread", "dask"] = Field("thread", description="Prefect task runner")
    dask_address: str | None = Field(None, description="Existing Dask scheduler (tcp://host:port)")


class StackSettings(Group):
    """The local stack `inferloop up` starts."""

    stack_profile: Literal["local", "prod"] = Field(
        "local",
        description="local: SQLite stores, local artifacts; prod: PostgreSQL, artifacts and lake on S3, "
        "a Dask cluster, authentication on the Prefect and MLflow APIs",
    )
    stack_host: str = Field("127.0.0.1", description="Interface the local stack binds to")
    prefect_port: int = Field(4200, ge=1, le=65535, description="Prefect server port (make up)")
    mlflow_port: int = Field(5000, ge=1, le=65535, description="MLflow server port (make up)")
    s3_port: int = Field(9000, ge=1, le=65535, description="Local S3 API port (make up)")
    s3_bucket: str = Field("inferloop", description="Bucket the local S3 API creates (make up)")
    postgres_port: int = Field(5432, ge=1, le=65535, description="PostgreSQL port (prod profile)")
    dask_scheduler_port: int = Field(8786, ge=1, le=65535, description="Dask scheduler port (prod)")
    dask_workers: int = Field(2, ge=1, le=64, description="Dask worker processes (prod profile)")


class ServingSettings(Group):
    """The online endpoint `inferloop serve` runs."""

    serve_host: str = Field("127.0.0.1", description="Interface the online endpoint binds to")
    serve_port: int = Field(8080, ge=1, le=65535, description="Port of the online endpoint")
    serve_poll_seconds: float = Field(
        10.0, gt=0.0, description="How often the endpoint asks the registry where @champion points"
    )
    serve_max_batch_rows: int = Field(
        2_000, ge=1, description="Rows of concurrent requests coalesced into one predict call, at most"
    )
    serve_max_wait_ms: float = Field(
        2.0, ge=0.0, le=1000.0, description="How long a predict call waits for more requests to join it"
    )
    serve_max_request_rows: int = Field(10_000, ge=1, description="Rows one request may hold (more: 413)")
    serve_max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Bytes one request body may hold (more: 413)"
    )
    serve_queue_rows: int = Field(
        100_000, ge=1, description="Scored rows waiting for the lake writer, at most (full: 503)"
    )
    serve_flush_seconds: float = Field(
        5.0, gt=0.0, description="How often scored online rows are written to the lake"
    )
    serve_keys_file: Path | None = Field(
        None,
        description="API keys (hashed, with scopes) of the endpoint (default: <state_dir>/serving/keys.json)",
    )
    # The default is about what one endpoint process answers on 2 cores (~230 single-row
    # requests/s measured): one runaway client cannot take more than a replica's worth.
    serve_rate_per_second: float = Field(
        200.0,
        ge=0.0,
        description="Requests per second one API key may make on average (more: 429 with Retry-After; "
        "0: no limit)",
    )
    serve_rate_burst: int = Field(
        400, ge=1, description="Requests one API key may make at once, above serve_rate_per_second"
    )
    serve_webhook_url: str | None = Field(
        None,
        description="URL MLflow's webhook calls on this endpoint (http://HOST:8080/hooks/mlflow): with "
        "serve_webhook_secret, inferloop serve registers it at start and follows an alias move at once",
    )
    serve_webhook_secret: SecretStr | None = Field(
        None,
        description="Secret MLflow signs its webhook calls with (HMAC-SHA256); none: /hooks/mlflow is off",
    )
    serve_degraded_policy: Literal["serve", "fallback", "reject"] = Field(
        "serve",
        description="While the monitor's confirmed breach of @champion is open: serve (the champion scores, "
        "responses carry `degraded`), fallback (@previous_champion scores) or reject (503 with the reason)",
    )
    serve_tls_cert: Path | None = Field(None, description="PEM certificate: the endpoint speaks HTTPS")
    serve_tls_key: Path | None = Field(
        None, validate_default=True, description="PEM private key of serve_tls_cert"
    )

    @field_validator("serve_tls_key")
    @classmethod
    def _tls_pair(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if (info.data.get("serve_tls_cert") is None) != (value is None):
            raise ValueError("set both INFERLOOP_SERVE_TLS_CERT and INFERLOOP_SERVE_TLS_KEY, or neither")
        return value


GROUPS: dict[str, type[Group]] = {
    "project": ProjectSettings,
    "lake": LakeSettings,
    "registry": RegistrySettings,
    "gate": GateSettings,
    "training": TrainingSettings,
    "scoring": ScoringSettings,
    "promotion": PromotionSettings,
    "monitoring": MonitoringSettings,
    "retrain": RetrainSettings,
    "replay": ReplaySettings,
    "runner": RunnerSettings,
    "stack": StackSettings,
    "serving": ServingSettings,
}
KNOBS: dict[str, str] = {name: group for group, model in GROUPS.items() for name in model.model_fields}


class Settings(BaseModel):
    """The whole configuration of a run: one object per group, loaded once (`load_settings`)."""

    model_config = ConfigDict(frozen=True)

    project: ProjectSettings
    lake: LakeSettings
    registry: RegistrySettings
    gate: GateSettings
    training: TrainingSettings
    scoring: ScoringSettings
    promotion: PromotionSettings
    monitoring: MonitoringSettings
    retrain: RetrainSettings
    replay: ReplaySettings
    runner: RunnerSettings
    stack: StackSettings
    serving: ServingSettings

    @property
    def state_dir(self) -> Path:
        return self.project.state_dir

    @cached_property
    def dataset(self):  # -> DatasetSpec (imported lazily: it pulls in yaml and pandas)
        from inferloop.core.dataset import load_dataset_spec

        return load_dataset_spec(self.project.dataset_spec)

    def with_overrides(self, **overrides: Any) -> "Settings":
        """These settings with some knobs changed, validated like the environment's values."""
        current = {name: getattr(getattr(self, group), name) for name, group in KNOBS.items()}
        return load_settings(**(current | overrides))


def _dataset_spec_path(spec: Path) -> Path:
    """The spec path as given, else relative to the repository (for runs outside the repo)."""
    if spec.exists() or spec.is_absolute():
        return spec
    return REPO_ROOT / spec


def _resolved(groups: dict[str, Group]) -> dict[str, Group]:
    """Defaults that depend on other knobs: everything local lives under the state dir."""
    project = groups["project"]
    state_dir = project.state_dir.expanduser().absolute()
    groups["project"] = project.model_copy(
        update={"state_dir": state_dir, "dataset_spec": _dataset_spec_path(project.dataset_spec)}
    )
    lake = groups["lake"]
    groups["lake"] = lake.model_copy(
        update={"storage_uri": lake.storage_uri or (state_dir / "lake").as_uri()}
    )
    registry = groups["registry"]
    groups["registry"] = registry.model_copy(
        update={
            "tracking_uri": registry.tracking_uri or f"sqlite:///{state_dir / 'mlflow.db'}",
            "mlflow_artifact_root": registry.mlflow_artifact_root or state_dir / "mlartifacts",
        }
    )
    gate = groups["gate"]
    groups["gate"] = gate.model_copy(
        update={
            "gx_runtime_dir": gate.gx_runtime_dir or state_dir / "gx",
            "personal_data_key_file": gate.personal_data_key_file or state_dir / "personal_data.key",
        }
    )
    serving = groups["serving"]
    groups["serving"] = serving.model_copy(
        update={"serve_keys_file": serving.serve_keys_file or state_dir / "serving" / "keys.json"}
    )
    return groups


def load_settings(**overrides: Any) -> Settings:
    """Read and validate every group; raise SettingsError naming the knob when a value is bad.
    `overrides` are knobs by name (e.g. `min_roc_auc=0.7`); None means "not overridden"."""
    unknown = sorted(set(overrides) - set(KNOBS))
    if unknown:
        raise SettingsError(f"Unknown setting(s) {', '.join(unknown)}: known are {', '.join(sorted(KNOBS))}")
    groups, problems = {}, []
    for group, model in GROUPS.items():
        given = {k: v for k, v in overrides.items() if v is not None and KNOBS[k] == group}
        try:
            groups[group] = model(**given)
        except ValidationError as error:
            problems += [
                f"INFERLOOP_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']} (got {e.get('input')!r})"
                for e in error.errors()
            ]
    if problems:
        raise SettingsError(f"Invalid settings: {'; '.join(problems)}")
    settings = Settings(**_resolved(groups))
    if not settings.registry.model_name:
        name = f"{settings.dataset.name}-classifier"
        settings = settings.model_copy(
            update={"registry": settings.registry.model_copy(update={"model_name": name})}
        )
    return settings


# INFERLOOP_* variables that are not knobs but are read by name elsewhere.
NOT_KNOBS = frozenset(
    {
        "INFERLOOP_PROJECT_DIR",
        "INFERLOOP_TEST_ELEC2_CSV",
        "INFERLOOP_OWNER_PID",  # the command that started a process (runtime/debris.py)
        "INFERLOOP_VERBOSE",  # `inferloop --verbose`, for the processes a command starts
    }
)
# Webhook URLs of alerts.yaml's channels (`url_env`), read by `inferloop deploy` / `inferloop alerts`.
ALERT_URL_PREFIX = "INFERLOOP_ALERT_"


def unknown_settings(environ: Mapping[str, str]) -> list[str]:
    """A warning for each INFERLOOP_* variable that is no knob (a misspelt setting is otherwise
    silently ignored), with the closest knob's name when one is close."""
    import difflib

    warnings = []
    for name in sorted(environ):
        knob = name.removeprefix("INFERLOOP_").lower()
        if not name.startswith("INFERLOOP_") or name in NOT_KNOBS or knob in KNOBS:
            continue
        if name.startswith(ALERT_URL_PREFIX):
            continue
        # Compared without the prefix every name shares, which would make any two look alike.
        close = difflib.get_close_matches(knob, list(KNOBS), n=1, cutoff=0.75)
        hint = (
            f": did you mean INFERLOOP_{close[0].upper()}?"
            if close
            else " (see the settings table in README.md)"
        )
        warnings.append(f"{name} is not an inferloop setting and is ignored{hint}")
    return warnings
