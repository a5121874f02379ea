"""The model's categorical encoder: strings or pandas categoricals to the training categories' codes.

Saved inside every model (MLflow `code_paths`, with `feature_codes`, which does the encoding), so
this module imports nothing of inferloop but that.
"""

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from inferloop.core.feature_codes import FeatureCodes


class CategoryCodeEncoder(TransformerMixin, BaseEstimator):
    """Categorical columns as the code of their value among the categories seen in training
    (sorted, as OrdinalEncoder orders them), then the numeric columns; one float64 matrix.

    A missing or unseen value encodes as NaN, which the booster treats as missing (as
    OrdinalEncoder with unknown_value=NaN did). Why not OrdinalEncoder: it looks up every value
    of an object column in a Python dict (~0.3 us per value, as long as the booster's own
    prediction). Here a pandas categorical column (a parquet dictionary column, read as such)
    costs one lookup per distinct value plus a vectorised `take` of its codes; strings are
    hashed in C (pandas `Index.get_indexer`).

    `personal` categorical columns (the spec's pii) are encoded by the hashing trick instead:
    the code is a stable hash of the value's text into PERSONAL_BUCKETS buckets, so the model
    (an MLflow artifact) keeps no value of theirs, needs no key to score, and a value unseen
    in training lands in a bucket like any other.
    """

    def __init__(self, categorical: list[str], numeric: list[str], personal: list[str] | None = None):
        self.categorical = categorical
        self.numeric = numeric
        self.personal = personal

    def fit(self, X: pd.DataFrame, y=None):
        self.categories_ = [
            np.array(
                [] if column in self._personal else sorted({str(v) for v in X[column].dropna().unique()}),
                dtype=object,
            )
            for column in self.categorical
        ]
        self.feature_names_in_ = np.array([*self.categorical, *self.numeric], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        return self.codes().transform(X)

    def codes(self) -> FeatureCodes:
        """The fitted encoding (what a compiled model's artifact saves), built on first use after
        fitting or loading and never saved (see `__getstate__`): a model saved without it loads as
        before, and skops sees no type of ours but the encoder."""
        cached = getattr(self, "_codes_cache", None)
        # Rebuilt when fitting (new categories_) or set_params (columns) changed what it holds.
        key = (tuple(self.categorical), tuple(self.numeric), tuple(self._personal))
        if cached is None or cached[0] is not self.categories_ or cached[1] != key:
            codes = FeatureCodes(
                self.categorical, self.numeric, [list(c) for c in self.categories_], self._personal
            )
            cached = self._codes_cache = (self.categories_, key, codes)
        return cached[2]

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_codes_cache", None)
        return state

    @property
    def _personal(self) -> list[str]:
        # getattr: models saved before `personal` existed load without the attribute.
        return getattr(self, "personal", None) or []

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return self.feature_names_in_.copy()
