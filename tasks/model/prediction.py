"""A model's scores, whichever runtime scores it, on at most the threads this process may use.

Imports no scikit-learn: a compiled model (`OptimisedModel`) scores without it, and a pipeline
brings its own when it is loaded.
"""

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from inferloop.tasks.model.optimised import OptimisedModel, prediction_threads

# Below this many rows, HistGradientBoosting predicts (and fits) faster on one OpenMP thread:
# waking the thread pool for every tree costs more than it saves (48 rows: 17 ms -> 8.5 ms per
# call here).
SMALL_BATCH_ROWS = 10_000


def positive_scores(model, features: pd.DataFrame) -> np.ndarray:
    """The model's probability of the positive class for every row, on at most the threads this
    process may use (OpenMP alone counts the host's CPUs, not a container's CPU quota)."""
    if isinstance(model, OptimisedModel):  # its library's own threads, sized when it was loaded
        return model.positive_scores(features)
    threads = 1 if len(features) < SMALL_BATCH_ROWS else prediction_threads()
    with threadpool_limits(threads, user_api="openmp"):
        return model.predict_proba(features)[:, 1]
