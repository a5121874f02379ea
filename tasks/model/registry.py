"""The MLflow registry: logging a trained model, registering it, and resolving aliases.

The registry is the source of truth for which model is in production: code asks for an alias,
resolves it once to a concrete version, and records that version everywhere it goes.
"""

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import pandas as pd
from prefect import task

from inferloop.core.errors import InferloopError
from inferloop.core.settings import Settings
from inferloop.tasks.model.evaluation import evaluation_figures

PROFILE_FILE = "reference_profile.json"  # stored in the model's extra_files, for monitoring
SERVING_PACKAGES = ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")

# skops refuses to load types it does not know; these are sklearn internals of the
# HistGradientBoosting pipeline. Anything else untrusted in a model is an error, not trusted blindly.
SKOPS_TRUSTED_TYPES = [
    "functools.partial",
    "inferloop.core.category_codes.CategoryCodeEncoder",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


class RegistryError(InferloopError, RuntimeError):
    """The registry is unreachable or lacks the requested model; the message says what to do."""


@dataclass(frozen=True)
class ModelVersionRef:
    """One concrete registered model version, as resolved from an alias."""

    name: str
    version: str
    run_id: str
    alias: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def mlflow_client(settings: Settings):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri)


def ensure_experiment(settings: Settings, name: str) -> str:
    """The experiment's id, creating it (with artifacts under the state dir when local)."""
    client = mlflow_client(settings)
    try:
        experiment = client.get_experiment_by_name(name)
    except Exception:  # MLflow raises several types for an unreachable server
        raise unreachable_error(settings) from None
    if experiment is not None:
        return experiment.experiment_id
    local = not settings.mlflow_tracking_uri.startswith(("http://", "https://"))
    location = (settings.mlflow_artifact_root / name).as_uri() if local else None
    return client.create_experiment(name, artifact_location=location)


def connection_failed(error: Exception) -> bool:
    text = str(error)
    return "Max retries exceeded" in text or "Failed to establish a new connection" in text


def unreachable_error(settings: Settings) -> RegistryError:
    return RegistryError(
        f"MLflow at {settings.mlflow_tracking_uri} is unreachable: start it with `make up` "
        "or point INFERLOOP_TRACKING_URI at a running tracking server"
    )


def content_hash(frame: pd.DataFrame) -> str:
    """A stable hash of a frame's content (row order included), for data lineage."""
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(row_hashes.tobytes()).hexdigest()


def model_code(scratch: Path) -> list[str]:
    """`code_paths` for a logged model: the inferloop module its pipeline imports, in packages
    of that one module (`inferloop.core.category_codes`), so the model loads where inferloop is
    not installed (MLflow puts the model's code directory first on sys.path when it loads it)."""
    from inferloop.core import category_codes

    package = scratch / "inferloop"
    (package / "core").mkdir(parents=True)
    for init in (package / "__init__.py", package / "core" / "__init__.py"):
        init.write_text('"""The part of inferloop a saved model needs."""\n')
    shutil.copy(category_codes.__file__, package / "core" / "category_codes.py")
    return [str(package)]


def model_requirements() -> list[str]:
    """What serving the model needs, pinned to the versions it was trained with. Declared, not
    inferred: MLflow's inference re-imports the model in a subprocess (~3 s per registration)."""
    from importlib.metadata import version

    return [f"{package}=={version(package)}" for package in SERVING_PACKAGES]


@task(name="log-and-register-model")
def log_and_register(
    settings: Settings,
    result,
    training_frame: pd.DataFrame,
    start: date,
    end: date,
    source_uri: str,
    validation_reports: list,
) -> ModelVersionRef:
    """Log params, metrics, plots, signature, input example, lineage, the gate's reports and the
    reference profile; register a new version as `challenger` (promotion decides the rest).

    The MLflow run is resumed by id in this thread (MLflow's active run is thread-local,
    Prefect runs tasks in worker threads).
    """
    import mlflow
    from mlflow.models import infer_signature

    client = mlflow_client(settings)
    experiment_id = ensure_experiment(settings, settings.experiment_name)
    name = settings.registered_model_name
    dataset = settings.dataset.name
    data_hash = content_hash(training_frame)
    run = client.create_run(
        experiment_id, run_name=f"train {start}..{end}", tags={"inferloop.dataset": dataset}
    )
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_params(
            {
                **result.params,
                "window_start": start,
                "window_end": end,
                "train_rows": result.train_rows,
                "holdout_rows": result.holdout_rows,
            }
        )
        mlflow.log_metrics({f"holdout_{k}": v for k, v in result.metrics.items()})
        mlflow.log_metrics(
            {
                "gate_rows_in": sum(r.rows_in for r in validation_reports),
                "gate_rows_quarantined": sum(r.rows_quarantined for r in validation_reports),
            }
        )
        mlflow.log_dict(
            {"reports": [r.to_dict() for r in validation_reports]}, "data_quality/validation_reports.json"
        )
        for filename, figure in evaluation_figures(
            result.holdout_target, result.holdout_scores, settings.decision_threshold
        ).items():
            mlflow.log_figure(figure, f"evaluation/{filename}")
        mlflow.log_dict(result.profile, "reference_profile.json")
        mlflow.set_tags(
            {
                "inferloop.data_gate": "accepted"
                if all(not r.refused for r in validation_reports)
                else "refused",
                "inferloop.data_hash": data_hash,
                "inferloop.source_uri": source_uri,
                "inferloop.window": f"{start}..{end}",
            }
        )
        source = mlflow.data.from_pandas(
            training_frame,
            source=source_uri,
            targets=settings.dataset.label.column,
            name=f"{dataset} {start}..{end}",
            digest=data_hash[:32],
        )
        mlflow.log_input(source, context="training")
        example = result.input_example
        signature = infer_signature(example, result.model.predict_proba(example))
        with tempfile.TemporaryDirectory() as scratch:
            profile_file = Path(scratch) / PROFILE_FILE
            profile_file.write_text(json.dumps(result.profile))
            info = mlflow.sklearn.log_model(
                result.model,
                name="model",
                signature=signature,
                input_example=example,
                pyfunc_predict_fn="predict_proba",
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
                registered_model_name=name,
                extra_files=[str(profile_file)],
                code_paths=model_code(Path(scratch)),
                pip_requirements=model_requirements(),
            )
    version = str(info.registered_model_version)
    client.set_registered_model_alias(name, settings.challenger_alias, version)
    return ModelVersionRef(
        name=name, version=version, run_id=run.info.run_id, alias=settings.challenger_alias
    )


def find_alias(settings: Settings, alias: str) -> ModelVersionRef | None:
    """The version behind `alias`, or None when the model or alias does not exist."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings)
    name = settings.registered_model_name
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        if connection_failed(error):
            raise unreachable_error(settings) from None
        raise RegistryError(
            f"MLflow at {settings.mlflow_tracking_uri} failed to resolve {name}@{alias}: {error.message}"
        ) from None
    except Exception:
        raise unreachable_error(settings) from None
    return ModelVersionRef(name=name, version=str(version.version), run_id=version.run_id, alias=alias)


@task(name="resolve-alias")
def resolve_alias(settings: Settings, alias: str) -> ModelVersionRef:
    """Resolve `models:/NAME@alias` to a concrete version, once per flow run."""
    ref = find_alias(settings, alias)
    if ref is None:
        raise RegistryError(
            f"No version of {settings.registered_model_name} has the alias @{alias}: train one "
            f"(inferloop train) or set the alias in the MLflow UI"
        )
    return ref


def load_model(settings: Settings, ref: ModelVersionRef):
    """The scikit-learn pipeline of a concrete version (predict_proba at full speed)."""
    import mlflow.sklearn

    mlflow_client(settings)
    return mlflow.sklearn.load_model(ref.uri)


def run_metric(settings: Settings, run_id: str, metric: str) -> float:
    return mlflow_client(settings).get_run(run_id).data.metrics[metric]


@cache
def load_reference_profile(settings: Settings, run_id: str) -> dict:
    """The training data's reference profile logged with a model's run (monitoring compares to it)."""
    import mlflow.artifacts

    mlflow_client(settings)
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{PROFILE_FILE}")
