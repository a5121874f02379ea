"""A registered version's optimised artifact: built, gated and logged at registration; loaded
for scoring only where its parity gate passed.

What a version carries (artifacts of its run, tags on the version):
- `optimised/optimised_model.so`: the compiled booster (whenever it could be built);
- `optimised/feature_codes.json`: the pipeline's encoding (`FeatureCodes`), which scores in front
  of the library without loading the pipeline (versions registered before it load the pipeline
  for its encoder);
- `optimised/parity_report.json`: the gate's `ParityReport`;
- tag `inferloop.optimised.runtime`: `treelite` (passed: usable), `failed parity: <why>` or
  `unavailable: <why>` (never used: scikit-learn scores it);
- tag `inferloop.optimised.platform`: the OS and machine the library was built for; a process
  on another one scores with scikit-learn.
A version without the runtime tag (registered before this, or with `optimised_artifact` off)
is scored by scikit-learn.
"""

import json
import logging
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from inferloop.core.errors import InferloopError
from inferloop.core.feature_codes import FeatureCodes
from inferloop.core.registry import ModelVersionRef, Registry
from inferloop.tasks.model.optimised import (
    LIBRARY_FILE,
    RUNTIME,
    CompiledModel,
    OptimisedArtifactUnavailable,
    OptimisedModel,
    build_library,
    encoder_of,
)
from inferloop.tasks.model.parity import ParityReport, check_parity

ARTIFACT_DIR = "optimised"
PARITY_FILE = "parity_report.json"
CODES_FILE = "feature_codes.json"
RUNTIME_TAG = "inferloop.optimised.runtime"
PLATFORM_TAG = "inferloop.optimised.platform"
PARITY_TAG = "inferloop.optimised.parity"
SKLEARN = "sklearn"
MAX_TAG_CHARS = 500

logger = logging.getLogger(__name__)


def this_platform() -> str:
    return f"{platform.system()}-{platform.machine()}"


@dataclass(frozen=True)
class OptimisedOutcome:
    """What registration did about a version's optimised artifact."""

    runtime_tag: str  # the value of inferloop.optimised.runtime
    report: ParityReport | None = None
    build_seconds: float | None = None

    @property
    def usable(self) -> bool:
        return self.runtime_tag == RUNTIME


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TAG_CHARS else text[: MAX_TAG_CHARS - 3] + "..."


def attach_optimised_artifact(
    registry: Registry,
    ref: ModelVersionRef,
    pipeline,
    holdout: pd.DataFrame,
    decision_threshold: float,
) -> OptimisedOutcome:
    """Build the version's library, gate it against the pipeline on `holdout` (raw features)
    plus generated edge cases, log library and report to the version's run and tag the version.
    Never raises for a model that cannot be built or fails the gate: the version is then scored
    by scikit-learn and its tag says why. Registry errors propagate."""
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / ARTIFACT_DIR
        try:
            built = build_library(pipeline, directory)
            saved_text = json.dumps(encoder_of(pipeline).to_dict())
            (directory / CODES_FILE).write_text(saved_text)
            saved = FeatureCodes.from_dict(json.loads(saved_text))  # as scoring will read it
            report = check_parity(
                pipeline, CompiledModel(built.path), holdout, decision_threshold, codes=saved
            )
        except Exception as error:  # the optional artifact never fails a registration
            why = str(error) if isinstance(error, OptimisedArtifactUnavailable) else repr(error)
            outcome = OptimisedOutcome(runtime_tag=_short(f"unavailable: {why}"))
            registry.tag_version(ref.version, {RUNTIME_TAG: outcome.runtime_tag})
            return outcome
        (directory / PARITY_FILE).write_text(json.dumps(report.to_dict(), indent=2))
        registry.log_run_files(ref.run_id, directory, ARTIFACT_DIR)
    outcome = OptimisedOutcome(
        runtime_tag=RUNTIME if report.passed else _short(f"failed parity: {report.reason}"),
        report=report,
        build_seconds=built.seconds,
    )
    registry.tag_version(
        ref.version,
        {
            RUNTIME_TAG: outcome.runtime_tag,
            PLATFORM_TAG: this_platform(),
            PARITY_TAG: _short(report.summary),
        },
    )
    return outcome


class NotUsable(InferloopError):
    """The version has no optimised artifact this process may use (the message says why)."""


@dataclass(frozen=True)
class LoadedArtifact:
    compiled: CompiledModel
    codes: FeatureCodes | None  # None: registered before the encoding was saved with the library


def load_optimised(registry: Registry, ref: ModelVersionRef, threads: int | None = None) -> LoadedArtifact:
    """The version's compiled library, loaded on at most `threads` threads, and its saved
    encoding; NotUsable when the version has none that passed its parity gate for this
    platform (score with scikit-learn)."""
    tags = registry.version_tags(ref.version)
    runtime = tags.get(RUNTIME_TAG)
    if runtime != RUNTIME:
        raise NotUsable(f"{ref.name} v{ref.version} has no usable optimised artifact ({runtime or 'none'})")
    if tags.get(PLATFORM_TAG) != this_platform():
        raise NotUsable(
            f"{ref.name} v{ref.version}'s library was built for {tags.get(PLATFORM_TAG)}, "
            f"this is {this_platform()}"
        )
    with tempfile.TemporaryDirectory() as scratch:
        directory = registry.download_run_file(ref.run_id, ARTIFACT_DIR, Path(scratch))
        library = (directory / LIBRARY_FILE).read_bytes()
        codes = _saved_codes(directory / CODES_FILE, ref)
    try:
        return LoadedArtifact(CompiledModel.from_bytes(library, threads), codes)
    except OptimisedArtifactUnavailable as error:
        raise NotUsable(str(error)) from error


def _saved_codes(path: Path, ref: ModelVersionRef) -> FeatureCodes | None:
    """The encoding saved with the library; None where there is none (registered before it was
    saved) or it does not read (the pipeline's own encoder then stands in, as parity compared)."""
    if not path.exists():
        return None
    try:
        return FeatureCodes.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as error:
        logger.warning(
            "%s v%s: %s does not read (%r): encoding with its pipeline",
            ref.name,
            ref.version,
            path.name,
            error,
        )
        return None


def scoring_model(registry: Registry, ref: ModelVersionRef, fallback: bool = False):
    """What scores with a version: its compiled library behind its saved encoding
    (`OptimisedModel`, runtime "treelite"; the pipeline is not loaded) where its parity gate
    passed and it loads here, else the scikit-learn pipeline (runtime "sklearn"). The same
    `predict_proba` either way. With `fallback` (a model for Dask workers) the pipeline comes
    along, to score where the library does not load."""
    try:
        artifact = load_optimised(registry, ref)
    except NotUsable:
        return registry.load_model(ref)
    pipeline = registry.load_model(ref) if fallback or artifact.codes is None else None
    try:
        codes = artifact.codes or encoder_of(pipeline)
    except OptimisedArtifactUnavailable:
        return pipeline
    return OptimisedModel(codes, artifact.compiled, pipeline if fallback else None)


def load_parity_report(registry: Registry, ref: ModelVersionRef) -> dict:
    """The parity report logged with a version (a dict of `ParityReport`'s fields)."""
    return registry.load_run_dict(ref.run_id, f"{ARTIFACT_DIR}/{PARITY_FILE}")
