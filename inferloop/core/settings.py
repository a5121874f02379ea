"""One typed settings object: every knob, with defaults that work on a fresh machine.

Values come from (highest first) explicit overrides, `INFERLOOP_*` environment variables, defaults.
"""

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from inferloop.core.errors import InferloopError

REPO_ROOT = Path(__file__).resolve().parents[2]


class SettingsError(InferloopError, ValueError):
    """A setting has an invalid value; the message names the environment variable to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INFERLOOP_", extra="forbid", frozen=True)

    state_dir: Path = Field(Path(".inferloop"), description="Local state: databases, lake, logs")
    dataset_spec: Path = Field(
        Path("datasets/transactions.yaml"), description="Dataset spec YAML (columns, label, time)"
    )
    expectations_dir: Path = Field(
        REPO_ROOT / "expectations", description="GX project holding the committed suites"
    )
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
    tracking_uri: str = Field("", description="MLflow tracking URI (default: SQLite in state_dir)")
    experiment_name: str = Field("inferloop-training", description="MLflow training experiment")
    model_name: str = Field("", description="Registered model name (default: <dataset>-classifier)")
    champion_alias: str = Field("champion", description="Alias of the production model")
    challenger_alias: str = Field("challenger", description="Alias of the newest candidate")
    previous_champion_alias: str = Field("previous_champion", description="Alias rollback restores")
    promotion_mode: Literal["auto", "approve"] = Field(
        "auto", description="approve: a person approves each promotion in the Prefect UI"
    )
    min_improvement: float = Field(
        0.0, ge=0.0, description="ROC AUC a challenger must gain over the champion to replace it"
    )
    max_pr_auc_regression: float = Field(0.02, ge=0.0, description="Tolerated PR AUC drop vs the champion")
    promotion_window_days: int = Field(2, ge=1, description="Recent labelled days promotion compares on")
    approval_timeout_seconds: int = Field(3600, ge=10, description="How long approve mode waits")
    min_roc_auc: float = Field(0.6, ge=0.0, le=1.0, description="A model below this is never champion")
    decision_threshold: float = Field(0.5, gt=0.0, lt=1.0, description="Score above which label=1")
    max_quarantine_share: float = Field(
        0.1, ge=0.0, le=1.0, description="A batch with a larger share of bad rows is refused"
    )
    gx_sample_rows: int = Field(
        10_000, ge=100, description="Rows of each file GX validates (schema, types, Data Docs)"
    )
    gx_scope: Literal["partition", "schema"] = Field(
        "partition",
        description="partition: GX validates every partition (and updates Data Docs); schema: once "
        "per file schema per process, for replays of long histories (row checks still cover every row)",
    )
    train_window_days: int = Field(7, ge=2, description="Days of labelled data a model trains on")
    holdout_days: int = Field(1, ge=1, description="Latest days of the window held out for metrics")
    score_batch_rows: int = Field(100_000, ge=1_000, description="Rows per streamed scoring chunk")
    monitoring_experiment_name: str = Field(
        "inferloop-monitoring", description="MLflow experiment of monitoring metrics (step = day)"
    )
    drift_psi_threshold: float = Field(0.2, gt=0.0, description="PSI above which a feature has drifted")
    min_drift_rows: int = Field(200, ge=1, description="Fewer scored rows than this: no drift verdict")
    monitor_metric: Literal["roc_auc", "pr_auc", "accuracy", "balanced_accuracy", "f1"] = Field(
        "roc_auc", description="Metric on delayed labels that decides degradation"
    )
    max_metric_drop: float = Field(
        0.05, ge=0.0, description="Drop of the monitored metric below the champion's validation value"
    )
    performance_window_days: int = Field(
        7, ge=1, description="Event days of labelled predictions the rolling metric covers"
    )
    min_labelled_rows: int = Field(200, ge=1, description="Fewer labelled rows than this: no verdict")
    confirm_days: int = Field(2, ge=1, description="Consecutive days a breach must last to act on it")
    retrain_cooldown_days: int = Field(3, ge=0, description="Days after a retrain before the next one")
    max_retrains_per_day: int = Field(1, ge=1, description="Retrains allowed per (logical) day")
    task_runner: Literal["thread", "dask"] = Field("thread", description="Prefect task runner")
    dask_address: str | None = Field(None, description="Existing Dask scheduler (tcp://host:port)")
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

    @model_validator(mode="after")
    def _absolute_state_dir(self) -> "Settings":
        object.__setattr__(self, "state_dir", self.state_dir.expanduser().absolute())
        return self

    @property
    def lake_uri(self) -> str:
        return self.storage_uri or (self.state_dir / "lake").as_uri()

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.state_dir / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> Path:
        return self.state_dir / "mlartifacts"

    @property
    def gx_runtime_dir(self) -> Path:
        """Where GX writes validation results and Data Docs (never into the committed project)."""
        return self.state_dir / "gx"

    @property
    def dataset_spec_path(self) -> Path:
        """The spec path as given, else relative to the repository (for runs outside the repo)."""
        if self.dataset_spec.exists() or self.dataset_spec.is_absolute():
            return self.dataset_spec
        return REPO_ROOT / self.dataset_spec

    @cached_property
    def dataset(self):  # -> DatasetSpec (imported lazily: it pulls in yaml and pandas)
        from inferloop.core.dataset import load_dataset_spec

        return load_dataset_spec(self.dataset_spec_path)

    @property
    def registered_model_name(self) -> str:
        return self.model_name or f"{self.dataset.name}-classifier"


def load_settings(**overrides) -> Settings:
    """Read and validate settings; raise SettingsError naming the knob when a value is bad."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"INFERLOOP_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']} (got {e.get('input')!r})"
            for e in error.errors()
        )
        raise SettingsError(f"Invalid settings: {problems}") from None
