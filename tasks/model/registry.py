"""Training's side of the registry: what is logged with a trained model, and the Prefect tasks
that register it and resolve aliases. Every MLflow call goes through `inferloop.core.registry`.
"""

import hashlib
import json
import shutil
import tempfile
from datetime import date
from functools import cache
from pathlib import Path

import pandas as pd
import pyarrow as pa
from prefect import task

from inferloop.core import catalog
from inferloop.core.dataset import DatasetSpec
from inferloop.core.registry import (
    BREACH_TAG,
    THRESHOLD_TAG,
    ModelNotFound,
    ModelRecord,
    ModelVersionRef,
    Registry,
    TrainingData,
)
from inferloop.core.settings import RegistrySettings, Settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import prepare_features
from inferloop.tasks.model.evaluation import evaluation_figures
from inferloop.tasks.model.optimised_artifact import attach_optimised_artifact, scoring_model

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


def model_registry(registry: RegistrySettings) -> Registry:
    """The registry the settings' registry group points at, for the configured model."""
    return Registry(
        tracking_uri=registry.tracking_uri,
        model_name=registry.model_name,
        artifact_root=registry.mlflow_artifact_root,
    )


def content_hash(frame: pd.DataFrame) -> str:
    """A stable hash of a frame's content (row order included), for data lineage."""
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(row_hashes.tobytes()).hexdigest()


def model_code(scratch: Path) -> list[str]:
    """`code_paths` for a logged model: the inferloop modules its pipeline imports, in packages
    of those modules alone (`inferloop.core.category_codes` and the `feature_codes` it uses), so
    the model loads where inferloop is not installed (MLflow puts the model's code directory
    first on sys.path when it loads it)."""
    from inferloop.core import category_codes, feature_codes

    package = scratch / "inferloop"
    (package / "core").mkdir(parents=True)
    for init in (package / "__init__.py", package / "core" / "__init__.py"):
        init.write_text('"""The part of inferloop a saved model needs."""\n')
    for module in (category_codes, feature_codes):
        shutil.copy(module.__file__, package / "core" / Path(module.__file__).name)
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
    reference profile; register a new version as `challenger` (promotion decides the rest), with
    its decision threshold as version tag THRESHOLD_TAG (what `ModelVersionRef.threshold` reads).
    With `optimised_artifact` on, the version also gets its compiled library and parity report
    (tasks/model/optimised_artifact.py), tagged usable only if the gate passed."""
    dataset = settings.dataset.name
    data_hash = content_hash(training_frame)
    threshold = result.threshold.threshold  # the version's own, everywhere it labels rows
    figures = evaluation_figures(result.holdout_target, result.holdout_scores, threshold)
    with tempfile.TemporaryDirectory() as scratch:
        profile_file = Path(scratch) / PROFILE_FILE
        profile_file.write_text(json.dumps(result.profile))
        record = ModelRecord(
            model=result.model,
            input_example=result.input_example,
            training_data=TrainingData(
                frame=training_frame,
                source_uri=source_uri,
                target_column=settings.dataset.label.column,
                name=f"{dataset} {start}..{end}",
                digest=data_hash[:32],
            ),
            params={
                **result.params,
                "window_start": start,
                "window_end": end,
                "train_rows": result.train_rows,
                "holdout_rows": result.holdout_rows,
                "holdout_start": result.holdout_start,
            },
            metrics={
                **{f"holdout_{k}": v for k, v in result.metrics.items()},
                "gate_rows_in": sum(r.rows_in for r in validation_reports),
                "gate_rows_quarantined": sum(r.rows_quarantined for r in validation_reports),
            },
            tags={
                "inferloop.data_gate": "accepted"
                if all(not r.refused for r in validation_reports)
                else "refused",
                "inferloop.data_hash": data_hash,
                "inferloop.source_uri": source_uri,
                "inferloop.window": f"{start}..{end}",
            },
            version_tags={THRESHOLD_TAG: repr(threshold)},
            json_artifacts={
                "data_quality/validation_reports.json": {
                    "reports": [r.to_dict() for r in validation_reports]
                },
                PROFILE_FILE: result.profile,
            },
            figures={f"evaluation/{filename}": figure for filename, figure in figures.items()},
            predict_fn="predict_proba",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            extra_files=[str(profile_file)],
            code_paths=model_code(Path(scratch)),
            pip_requirements=model_requirements(),
        )
        registry = model_registry(settings.registry)
        ref = registry.log_model_version(
            settings.registry.experiment_name,
            run_name=f"train {start}..{end}",
            record=record,
            alias=settings.registry.challenger_alias,
            run_tags={"inferloop.dataset": dataset},
        )
    if settings.training.optimised_artifact:
        held_out = training_frame[training_frame[settings.dataset.id_column].isin(result.holdout_ids)]
        attach_optimised_artifact(
            registry,
            ref,
            result.model,
            prepare_features(held_out, settings.dataset),
            threshold,
        )
    return ref


def find_alias(registry: RegistrySettings, alias: str) -> ModelVersionRef | None:
    """The version behind `alias`, or None when the model or alias does not exist."""
    return model_registry(registry).find_alias(alias)


@task(name="resolve-alias")
def resolve_alias(registry: RegistrySettings, alias: str) -> ModelVersionRef:
    """Resolve `models:/NAME@alias` to a concrete version, once per flow run."""
    ref = find_alias(registry, alias)
    if ref is None:
        raise ModelNotFound(
            f"No version of {registry.model_name} has the alias @{alias}: train one "
            f"(inferloop train) or set the alias in the MLflow UI"
        )
    return ref


def record_breach_state(
    registry: RegistrySettings, champion: ModelVersionRef, day: str, breached: bool, reasons: list[str]
) -> str:
    """Keep the champion's open breach on the version (BREACH_TAG), where `inferloop serve`
    reads it with the alias to apply its degraded-model policy: opened by the first confirmed
    breach (`breached`), closed by the first day without one; a new champion starts without.
    Returns "opened", "closed" or "" (no change)."""
    models = model_registry(registry)
    if breached and champion.open_breach is None:
        models.tag_version(champion.version, {BREACH_TAG: json.dumps({"since": day, "reasons": reasons})})
        return "opened"
    if not breached and champion.open_breach is not None:
        models.untag_version(champion.version, BREACH_TAG)
        return "closed"
    return ""


def version_threshold(
    registry: RegistrySettings, version: str, default: float, known: ModelVersionRef | None = None
) -> float:
    """The decision threshold `version` labels rows at (`ModelVersionRef.threshold`); `known`, a
    ref already resolved (the champion), answers without asking the registry when it is `version`."""
    ref = (
        known
        if known is not None and known.version == version
        else model_registry(registry).get_version(version)
    )
    return ref.threshold(default)


def load_model(registry: RegistrySettings, ref: ModelVersionRef):
    """The scikit-learn pipeline of a concrete version (predict_proba at full speed)."""
    return model_registry(registry).load_model(ref)


def load_scoring_model(registry: RegistrySettings, ref: ModelVersionRef, fallback: bool = False):
    """What batch scoring predicts with: the compiled library where the version's parity gate
    passed, else the scikit-learn pipeline (`optimised_artifact.scoring_model`; `fallback`: the
    pipeline comes along, for Dask workers where the library may not load)."""
    return scoring_model(model_registry(registry), ref, fallback)


@cache
def load_reference_profile(registry: RegistrySettings, run_id: str) -> dict:
    """The training data's reference profile logged with a model's run (monitoring compares to it)."""
    return model_registry(registry).load_run_dict(run_id, PROFILE_FILE)


def save_holdout_predictions(storage: Storage, spec: DatasetSpec, ref: ModelVersionRef, result) -> None:
    """Keep the validation fit's scores of the held-out rows next to the version's predictions."""
    table = pa.table({spec.id_column: result.holdout_ids, "score": result.holdout_scores})
    storage.write_table(catalog.holdout_predictions(ref.name, ref.version), table)


def load_holdout_predictions(
    storage: Storage, spec: DatasetSpec, ref: ModelVersionRef
) -> pd.DataFrame | None:
    path = catalog.holdout_predictions(ref.name, ref.version)
    return storage.read_table(path).to_pandas() if storage.exists(path) else None
