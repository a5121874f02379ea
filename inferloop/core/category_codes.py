"""The model's categorical encoder: strings or pandas categoricals to the training categories' codes.

Saved inside every model (MLflow `code_paths`), so this module imports nothing of inferloop.
"""

import hashlib

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

# HistGradientBoosting takes category codes 0..254 (max_bins 255).
PERSONAL_BUCKETS = 255
# Up to this many values, a Python dict finds a column's codes faster than `Index.get_indexer`
# (~0.1 ms of pandas overhead per call; per value, the dict costs ~0.1 us more: they meet near
# 1,000 values).
DICT_LOOKUP_MAX_VALUES = 500


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
        for i, (column, lookup) in enumerate(zip(self.categorical, self._lookups(), strict=True)):
            if lookup is None:
                encoded[:, i] = self._buckets(X[column])
            else:
                encoded[:, i] = lookup.codes(X[column])
        for i, column in enumerate(self.numeric, start=len(self.categorical)):
            values = X[column]
            if isinstance(values.dtype, np.dtype) and values.dtype.kind in "fiub":
                # Already numeric: pd.to_numeric would return it as it is (and cost ~0.1 ms).
                encoded[:, i] = values.to_numpy()
            else:
                encoded[:, i] = pd.to_numeric(values, errors="coerce")
        return encoded

    def _lookups(self) -> list["_CategoryLookup | None"]:
        """Each categorical column's lookup (None: a personal column, hashed), built on first use
        after fitting or loading and never saved (see `__getstate__`): a model saved without
        them loads as before, and skops sees no type of ours but the encoder."""
        cached = getattr(self, "_lookups_cache", None)
        # Rebuilt when fitting (new categories_) or set_params (columns) changed what they hold.
        key = (tuple(self.categorical), tuple(self._personal))
        if cached is None or cached[0] is not self.categories_ or cached[1] != key:
            lookups = [
                None if column in self._personal else _CategoryLookup(categories)
                for column, categories in zip(self.categorical, self.categories_, strict=True)
            ]
            cached = self._lookups_cache = (self.categories_, key, lookups)
        return cached[2]

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_lookups_cache", None)
        return state

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


class _CategoryLookup:
    """One categorical column's training categories, ready to look values up in: the pandas
    Index (hashing in C, for many values) and, when every category is a distinct str, a dict
    (for a few values; it answers as the Index does: a str category equals only a str)."""

    def __init__(self, categories: np.ndarray):
        self.index = pd.Index(categories)
        self.positions = (
            {category: float(position) for position, category in enumerate(categories)}
            if all(isinstance(c, str) for c in categories) and self.index.is_unique
            else None
        )

    def codes(self, values: pd.Series) -> np.ndarray:
        if isinstance(values.dtype, pd.CategoricalDtype):
            # Decide once per distinct value; the last entry (code -1: missing) stays NaN.
            table = np.append(self._positions(values.cat.categories.astype(str)), np.nan)
            return table[values.cat.codes.to_numpy()]
        if values.dtype != object:
            values = values.astype(object).where(values.notna(), None).map(str, na_action="ignore")
        return self._positions(values)

    def _positions(self, values: pd.Index | pd.Series) -> np.ndarray:
        """Each value's position among the categories; NaN for one not among them."""
        if self.positions is not None and len(values) <= DICT_LOOKUP_MAX_VALUES:
            get = self.positions.get
            return np.array([get(value, np.nan) for value in values.to_numpy()], dtype=np.float64)
        positions = self.index.get_indexer(values)
        return np.where(positions >= 0, positions, np.nan)


def _bucket(text: str) -> int:
    """A hash that is the same in every process (Python's own `hash` of a str is salted)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % PERSONAL_BUCKETS
