"""The model's categorical encoder: strings or pandas categoricals to the training categories' codes.

Saved inside every model (MLflow `code_paths`), so this module imports nothing of inferloop.
"""

import hashlib

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

# HistGradientBoosting takes category codes 0..254 (max_bins 255).
PERSONAL_BUCKETS = 255


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
        encoded = np.empty((len(X), len(self.categorical) + len(self.numeric)), dtype=np.float64)
        for i, (column, categories) in enumerate(zip(self.categorical, self.categories_, strict=True)):
            if column in self._personal:
                encoded[:, i] = self._buckets(X[column])
            else:
                encoded[:, i] = self._codes(X[column], pd.Index(categories))
        for i, column in enumerate(self.numeric, start=len(self.categorical)):
            encoded[:, i] = pd.to_numeric(X[column], errors="coerce")
        return encoded

    @staticmethod
    def _codes(values: pd.Series, categories: pd.Index) -> np.ndarray:
        if isinstance(values.dtype, pd.CategoricalDtype):
            # Decide once per distinct value; the last entry (code -1: missing) stays NaN.
            positions = categories.get_indexer(values.cat.categories.astype(str))
            table = np.append(np.where(positions >= 0, positions, np.nan), np.nan)
            return table[values.cat.codes.to_numpy()]
        if values.dtype != object:
            values = values.astype(object).where(values.notna(), None).map(str, na_action="ignore")
        positions = categories.get_indexer(values)
        return np.where(positions >= 0, positions, np.nan)

    @property
    def _personal(self) -> list[str]:
        # getattr: models saved before `personal` existed load without the attribute.
        return getattr(self, "personal", None) or []

    @staticmethod
    def _buckets(values: pd.Series) -> np.ndarray:
        """Each value's bucket, hashed once per distinct value; missing stays NaN."""
        categorical = values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")
        buckets = [_bucket(str(category)) for category in categorical.cat.categories]
        return np.append(np.asarray(buckets, dtype=np.float64), np.nan)[categorical.cat.codes.to_numpy()]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return self.feature_names_in_.copy()


def _bucket(text: str) -> int:
    """A hash that is the same in every process (Python's own `hash` of a str is salted)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % PERSONAL_BUCKETS
