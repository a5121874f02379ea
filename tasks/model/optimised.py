"""The optimised inference artifact: a fitted pipeline's booster compiled to a shared library.

treelite imports the fitted HistGradientBoostingClassifier, tl2cgen generates C for its trees and
a C compiler builds a shared library; `CompiledModel` loads it and predicts the positive-class
probability of the same prepared feature matrix the booster sees; `OptimisedModel` puts the
pipeline's encoding (`FeatureCodes`, Python, no scikit-learn) in front of it. Whether a library
may be used is decided by the parity gate (`tasks/model/parity.py`).

Why categorical splits are rewritten before compiling: scikit-learn routes a missing categorical
value (NaN, a negative code, or a category the booster never saw) the way the node's
`missing_go_to_left` says. tl2cgen 1.0.0 tests only "not missing and in the node's category
list", and compiles an empty list to `if (0)`. HistGradientBoosting makes such empty-list splits
when missingness itself carries signal ("missing to the left, every known category to the
right"), and every missing row then went right in the compiled library: probabilities up to 0.20
apart (issue 14), while treelite's own reference predictor agreed. Stating every categorical split
as "known categories that go right" (`category_list_right_child`) when missing values go left,
and as "categories that go left" otherwise, gives the compiled test exactly scikit-learn's
routing: the list is never empty (a split has rows on both sides) and anything not listed
(missing, unseen, negative) goes where scikit-learn sends missing values.

Why some inputs are moved by one float64 step: tl2cgen's generated code reads a feature as a
union of a double and an int, and takes the value as missing when the int (the double's low 32
bits) is -1. A finite double whose low 32 bits are all ones (18.499999999999996, the step below
18.5) was therefore scored as missing. Such a value is replaced by its neighbour one step
toward zero (bit pattern minus one), which is on the same side of every split threshold unless
a threshold is that neighbour (positive) or the value itself (negative), i.e. unless a threshold's
low 32 bits are 0xFFFFFFFE or 0xFFFFFFFF: a model with such a threshold is not compiled.
"""

import ctypes
import functools
import logging
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from inferloop.core.errors import InferloopError
from inferloop.core.feature_codes import FeatureCodes

LIBRARY_FILE = "optimised_model.so"
# Below this many rows one thread predicts faster: waking a second one costs more than it saves
# (one row: 0.06 ms on 1 thread, 2-12 ms on 2 on a loaded 2-core machine; 20k rows: 18 vs 31 ms).
SMALL_BATCH_ROWS = 10_000
RUNTIME = "treelite"  # what a version's tag and a manifest record when the library scored


class OptimisedArtifactUnavailable(InferloopError, RuntimeError):
    """The library cannot be built here (no C compiler, or the model is not supported)."""


logger = logging.getLogger(__name__)


@ctypes.CFUNCTYPE(None, ctypes.c_char_p)
def _native_log(message: bytes) -> None:
    """treelite and tl2cgen print their native libraries' log lines (build progress, a note on
    the bundled treelite's version) to the console: they belong in the debug log."""
    logger.debug(message.decode("utf-8", "replace"))


def _quiet(library) -> None:
    for register in ("TL2cgenRegisterLogCallback", "TreeliteRegisterLogCallback"):
        if hasattr(library, register):
            getattr(library, register)(_native_log)


@contextmanager
def native_stderr_to_debug() -> Iterator[None]:
    """Native code that writes to the process's stderr (the treelite bundled in tl2cgen notes
    that the model came from a newer treelite) goes to the debug log; other lines written to
    stderr meanwhile (another thread's log) are written back."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                if "treelite" in line.lower() or "tl2cgen" in line.lower():
                    logger.debug(line.rstrip())
                else:
                    sys.stderr.write(line)


@functools.cache
def _tl2cgen():
    """tl2cgen, its native log lines (and those of the treelite it bundles) in the debug log
    (the callbacks are registered once per process, not per prediction)."""
    import tl2cgen
    from tl2cgen import libloader
    from treelite import core

    _quiet(libloader._LIB)
    _quiet(core._LIB)
    return tl2cgen


def available_cpus() -> int:
    """CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota (a
    container's `--cpus`, a Kubernetes limit), at least 1. `os.cpu_count()` reports the host's."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    cpus = min(cpus, math.ceil(quota)) if quota else cpus
    # OMP_NUM_THREADS is what the process was told to use (a Dask nanny sets 1 per worker) and
    # the most the OpenMP runtime lets a compiled library start.
    told = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return max(1, min(cpus, int(told)) if told.isdigit() and int(told) > 0 else cpus)


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The cgroup's CPU quota in CPUs (v2 `cpu.max`, v1 `cpu.cfs_quota_us`), None if unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def prediction_threads() -> int:
    """Threads a prediction may use here: inside a Dask worker its own thread count (its other
    threads score other partitions), else the CPUs available to the process."""
    if "distributed" not in sys.modules:  # not a Dask worker: no need to import Dask to ask
        return available_cpus()
    try:
        from distributed import get_worker

        return max(1, min(get_worker().state.nthreads, available_cpus()))
    except (ImportError, ValueError, AttributeError):  # ValueError: not in a worker
        return available_cpus()


def c_compiler() -> str | None:
    """The C compiler to build with: $CC when set (None if it does not exist), else gcc, cc or clang."""
    wanted = os.environ.get("CC")
    if wanted:
        return shutil.which(shlex.split(wanted)[0])
    return next((found for name in ("gcc", "cc", "clang") if (found := shutil.which(name))), None)


def booster_of(pipeline):
    """The pipeline's HistGradientBoostingClassifier (its last step)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    booster = pipeline[-1] if hasattr(pipeline, "steps") else pipeline
    if not isinstance(booster, HistGradientBoostingClassifier) or booster.n_trees_per_iteration_ != 1:
        raise OptimisedArtifactUnavailable(
            f"Only binary HistGradientBoostingClassifier models compile, not {type(booster).__name__}: "
            "the version is served by scikit-learn"
        )
    return booster


def prepared_features(pipeline, features: pd.DataFrame) -> np.ndarray:
    """The float64 matrix the booster sees: every pipeline step but the last applied."""
    # Step by step, as Pipeline.transform does: the sub-pipeline, its fitted check and metadata
    # routing cost ~0.1 ms per call, a third of a single row's encoding.
    matrix = features
    for _, step in pipeline.steps[:-1]:
        if step is not None and step != "passthrough":
            matrix = step.transform(matrix)
    return np.ascontiguousarray(matrix, dtype=np.float64)


def _set_bits(words: np.ndarray) -> np.ndarray:
    """The categories in one of scikit-learn's bitsets (uint32 words, bit i = category i)."""
    bits = np.unpackbits(np.ascontiguousarray(words, dtype="<u4").view(np.uint8), bitorder="little")
    return np.flatnonzero(bits).astype(np.uint32)


LOW_WORD = np.uint64(0xFFFFFFFF)


def _low_word(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.uint64) & LOW_WORD


def without_missing_sentinel(matrix: np.ndarray) -> np.ndarray:
    """`matrix`, with every finite value tl2cgen would read as missing (low 32 bits all ones)
    moved one step toward zero; the same array when there is none (almost always)."""
    if sys.byteorder == "little" and matrix.ndim == 2 and matrix.flags.c_contiguous:
        # Compare the low 32-bit halves in place: no 8-byte temporary of the whole matrix.
        sentinel = matrix.view(np.uint32)[:, 0::2] == np.uint32(0xFFFFFFFF)
    else:
        sentinel = _low_word(matrix) == LOW_WORD
    if not sentinel.any():
        return matrix
    at = np.nonzero(sentinel)
    finite = ~np.isnan(matrix[at])  # a NaN stays NaN: it is missing for both
    moved = matrix.copy()
    moved.view(np.uint64)[tuple(index[finite] for index in at)] -= np.uint64(1)
    return moved


def _check_thresholds(booster) -> None:
    """Refuse a model where moving a sentinel value one step could cross a split threshold."""
    for (predictor,) in booster._predictors:
        nodes = predictor.nodes
        thresholds = nodes["num_threshold"][(nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)]
        if (_low_word(thresholds) >= LOW_WORD - np.uint64(1)).any():
            raise OptimisedArtifactUnavailable(
                "A split threshold's low 32 bits are 0xFFFFFFFE/F, which the compiled library "
                "cannot tell from a missing value: the version is served by scikit-learn"
            )


def treelite_model(booster):
    """The booster as a treelite model whose categorical splits route like scikit-learn's."""
    import warnings

    import treelite

    _check_thresholds(booster)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # treelite casts NaN-free categories_ itself
        model = treelite.sklearn.import_model(booster)
    known, feature_map = booster._bin_mapper.make_known_categories_bitsets()
    for tree_id, (predictor,) in enumerate(booster._predictors):
        nodes = predictor.nodes
        if not nodes["is_categorical"].any():
            continue
        tree = model.get_tree_accessor(tree_id)
        default_left = tree.get_field("default_left").copy()
        right_child = np.zeros(len(nodes), dtype=np.uint8)
        lists = []
        for i, node in enumerate(nodes):
            if node["is_leaf"] or not node["is_categorical"]:
                lists.append(np.empty(0, dtype=np.uint32))
                continue
            left = _set_bits(predictor.raw_left_cat_bitsets[node["bitset_idx"]])
            if node["missing_go_to_left"]:
                seen = _set_bits(known[feature_map[node["feature_idx"]]])
                lists.append(np.setdiff1d(seen, left).astype(np.uint32))
                right_child[i] = 1
            else:
                lists.append(left)
            default_left[i] = node["missing_go_to_left"]
        ends = np.cumsum([len(categories) for categories in lists], dtype=np.uint64)
        tree.set_field("category_list", np.concatenate(lists).astype(np.uint32))
        tree.set_field("category_list_begin", np.concatenate([[0], ends[:-1]]).astype(np.uint64))
        tree.set_field("category_list_end", ends)
        tree.set_field("category_list_right_child", right_child)
        tree.set_field("default_left", default_left)
    return model


@dataclass(frozen=True)
class BuiltLibrary:
    path: Path
    compiler: str
    seconds: float


def compile_library(model, directory: Path, threads: int | None = None) -> BuiltLibrary:
    """Compile a treelite model (`treelite_model(booster)`) to `directory/optimised_model.so`.
    The code is built for the generic target (no -march=native): the library runs on any x86-64
    host the image does. Raises OptimisedArtifactUnavailable when no C compiler exists."""
    tl2cgen = _tl2cgen()

    compiler = c_compiler()
    if compiler is None:
        wanted = os.environ.get("CC")
        raise OptimisedArtifactUnavailable(
            f"No C compiler ({'CC=' + wanted + ' does not exist' if wanted else 'gcc, cc or clang'}): "
            "install gcc (or point CC at one) to build the optimised artifact"
        )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LIBRARY_FILE
    threads = threads or available_cpus()
    started = time.perf_counter()
    try:
        with native_stderr_to_debug():
            tl2cgen.export_lib(
                model,
                toolchain=shlex.quote(compiler),
                libpath=str(path),
                params={"parallel_comp": max(1, threads)},  # translation units compile in parallel
                nthread=threads,
                # -O1 after tl2cgen's -O3 (the last one counts): 200 trees with 70-category splits
                # built in 7 s instead of 49 s here, and predicted no slower (1.7 s vs 2.5 s, 300k rows).
                options=["-O1"],
            )
    except (tl2cgen.TL2cgenError, ValueError, OSError) as error:
        raise OptimisedArtifactUnavailable(f"Compiling the model with {compiler} failed: {error}") from error
    return BuiltLibrary(path=path, compiler=compiler, seconds=time.perf_counter() - started)


class CompiledModel:
    """A compiled library loaded for prediction, on at most `threads` threads (default: the
    Dask worker's thread count inside one, else the CPUs available; never more than those).

    Pickles as the library's bytes (Dask ships it to workers), loaded again on arrival."""

    def __init__(self, path: Path, threads: int | None = None):
        tl2cgen = _tl2cgen()

        self.path = Path(path)
        self.threads = max(1, min(threads or prediction_threads(), available_cpus()))
        try:
            self._predictor = tl2cgen.Predictor(str(self.path), nthread=self.threads)
            self._single = (
                tl2cgen.Predictor(str(self.path), nthread=1) if self.threads > 1 else self._predictor
            )
        except (tl2cgen.TL2cgenError, OSError) as error:
            raise OptimisedArtifactUnavailable(
                f"{self.path} is not a loadable compiled model ({error}): score with scikit-learn"
            ) from error

    @classmethod
    def from_bytes(cls, library: bytes, threads: int | None = None) -> "CompiledModel":
        """Load a library from its bytes, kept in a per-user cache named by content hash. Kept,
        not deleted after loading: the dynamic loader reuses an open library by path, so a path
        must never name two different libraries in one process."""
        import hashlib

        cache = Path(tempfile.gettempdir()) / f"inferloop-optimised-{os.getuid()}"
        cache.mkdir(mode=0o700, exist_ok=True)
        path = cache / f"{hashlib.sha256(library).hexdigest()[:32]}.so"
        if path.exists():
            path.touch()  # its time is its last use: the prune below keeps what is in use
        else:
            partial = path.with_suffix(f".{os.getpid()}.partial")
            partial.write_bytes(library)
            partial.replace(path)  # atomic: another process never loads half a file
            prune_library_cache(cache, keep=path)
        loaded = cls(path, threads)
        loaded._library = library  # pickling never depends on the cached file still being there
        return loaded

    def library_bytes(self) -> bytes:
        return getattr(self, "_library", None) or self.path.read_bytes()

    def __reduce__(self):
        return (CompiledModel.from_bytes, (self.library_bytes(), None))

    @property
    def num_feature(self) -> int:
        return self._predictor.num_feature

    def positive_scores(self, matrix: np.ndarray) -> np.ndarray:
        """The probability of the positive class for every row of the prepared matrix."""
        tl2cgen = _tl2cgen()

        matrix = without_missing_sentinel(np.ascontiguousarray(matrix, dtype=np.float64))
        if len(matrix) == 0:
            return np.empty(0, dtype=np.float64)
        predictor = self._single if len(matrix) < SMALL_BATCH_ROWS else self._predictor
        return np.asarray(predictor.predict(tl2cgen.DMatrix(matrix, dtype="float64"))).reshape(-1)

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        positive = self.positive_scores(matrix)
        return np.column_stack([1.0 - positive, positive])  # as scikit-learn's binary loss does


LIBRARY_CACHE_DAYS = 7


def prune_library_cache(cache: Path, keep: Path, days: float = LIBRARY_CACHE_DAYS) -> list[Path]:
    """Remove cached libraries (and partial writes of crashed writers) unused for `days`.

    Safe while other processes run: a loaded library stays mapped after its file is removed, and
    a name is a content hash, so a file written again under it holds the same library."""
    cutoff = time.time() - days * 86_400
    removed = []
    for stale in cache.iterdir():
        try:
            if stale.suffix in (".so", ".partial") and stale != keep and stale.stat().st_mtime < cutoff:
                stale.unlink()
                removed.append(stale)
        except FileNotFoundError:  # another process pruned it first
            continue
    return removed


def encoder_of(pipeline) -> FeatureCodes:
    """The pipeline's fitted encoding (its one step before the booster), which a compiled model
    uses in place of the pipeline."""
    steps = [step for _, step in pipeline.steps[:-1] if step is not None and step != "passthrough"]
    if len(steps) != 1 or not callable(getattr(steps[0], "codes", None)):
        raise OptimisedArtifactUnavailable(
            f"Only pipelines that encode with CategoryCodeEncoder compile, not {steps}: "
            "the version is served by scikit-learn"
        )
    return steps[0].codes()


class OptimisedModel:
    """The version's encoding (`FeatureCodes`) in front of its compiled booster: `predict_proba` of
    raw features, like the pipeline's, without scikit-learn. `runtime` names what scored.

    `fallback` (the pipeline, where a Dask worker receives the model) scores instead when the
    library does not load where the model is unpickled."""

    runtime = RUNTIME

    def __init__(self, codes: FeatureCodes, compiled: CompiledModel, fallback=None):
        self.codes = codes
        self.compiled = compiled
        self.fallback = fallback

    def positive_scores(self, features: pd.DataFrame) -> np.ndarray:
        return self.compiled.positive_scores(self.codes.transform(features))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return self.compiled.predict_proba(self.codes.transform(features))

    def __reduce__(self):
        return (arrived, (self.codes, self.compiled.library_bytes(), self.fallback))


def arrived(codes: FeatureCodes, library: bytes, fallback=None):
    """An OptimisedModel shipped to another process (a Dask worker, the endpoint's loader). A
    library that does not load there is scored by the fallback pipeline (manifests then say
    "sklearn"): failing while a task's arguments are unpacked would take the worker down, not
    just the task. Without a fallback the error says so."""
    try:
        return OptimisedModel(codes, CompiledModel.from_bytes(library), fallback)
    except OptimisedArtifactUnavailable as error:
        if fallback is None:
            raise
        logger.warning("The compiled model does not load here (%s): scoring with scikit-learn", error)
        return fallback


def runtime_of(model) -> str:
    """What scores with `model`: "treelite" for a compiled one, "sklearn" for a pipeline."""
    return getattr(model, "runtime", "sklearn")


def build_library(pipeline, directory: Path, threads: int | None = None) -> BuiltLibrary:
    """Compile the pipeline's booster (categorical splits routed as scikit-learn routes them)."""
    return compile_library(treelite_model(booster_of(pipeline)), directory, threads)
