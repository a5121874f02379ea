"""The model's feature encoding without scikit-learn: raw features to the booster's float64 matrix.

`FeatureCodes` is the fitted state of the pipeline's encoder (`category_codes.CategoryCodeEncoder`,
which delegates to it), saved as JSON beside a version's compiled library, so that scoring with the
library needs neither scikit-learn nor the pipeline (importing and unpickling those cost about a
second per process). Saved inside every model too (MLflow `code_paths`), so this module imports
nothing of inferloop.
"""

import hashlib

import numpy as np
import pandas as pd

# HistGradientBoosting takes category codes 0..254 (max_bins 255).
PERSONAL_BUCKETS = 255
# Up to this many values, a Python dict finds a column's codes faster than `Index.get_indexer`
# (~0.1 ms of pandas overhead per call; per value, the dict costs ~0.1 us more: they meet near
# 1,000 values).
DICT_LOOKUP_MAX_VALUES = 500


class FeatureCodes:
    """Categorical columns as the code of their value among the training categories (missing or
    unseen: NaN, which the booster treats as missing), then the numeric columns; one float64
    matrix. A `personal` categorical column is hashed into PERSONAL_BUCKETS buckets instead."""

    def __init__(
        self,
        categorical: list[str],
        numeric: list[str],
        categories: list[list[str]],
        personal: list[str] | None = None,
    ):
        self.categorical = list(categorical)
        self.numeric = list(numeric)
        self.categories = [list(values) for values in categories]
        self.personal = list(personal or [])
        self._lookups = [
            None if column in self.personal else _CategoryLookup(np.array(values, dtype=object))
            for column, values in zip(self.categorical, self.categories, strict=True)
        ]

    def to_dict(self) -> dict:
        return {
            "categorical": self.categorical,
            "numeric": self.numeric,
            "categories": self.categories,
            "personal": self.personal,
        }

    @classmethod
    def from_dict(cls, saved: dict) -> "FeatureCodes":
        return cls(saved["categorical"], saved["numeric"], saved["categories"], saved.get("personal"))

    def __reduce__(self):  # pickles as its saved form: the lookups are rebuilt on arrival
        return (FeatureCodes.from_dict, (self.to_dict(),))

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        encoded = np.empty((len(X), len(self.categorical) + len(self.numeric)), dtype=np.float64)
        for i, (column, lookup) in enumerate(zip(self.categorical, self._lookups, strict=True)):
            encoded[:, i] = _buckets(X[column]) if lookup is None else lookup.codes(X[column])
        for i, column in enumerate(self.numeric, start=len(self.categorical)):
            values = X[column]
            if isinstance(values.dtype, np.dtype) and values.dtype.kind in "fiub":
                # Already numeric: pd.to_numeric would return it as it is (and cost ~0.1 ms).
                encoded[:, i] = values.to_numpy()
            else:
                encoded[:, i] = pd.to_numeric(values, errors="coerce")
        return encoded


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


def _buckets(values: pd.Series) -> np.ndarray:
    """Each value's bucket, hashed once per distinct value; missing stays NaN."""
    categorical = values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")
    buckets = [_bucket(str(category)) for category in categorical.cat.categories]
    return np.append(np.asarray(buckets, dtype=np.float64), np.nan)[categorical.cat.codes.to_numpy()]


def _bucket(text: str) -> int:
    """A hash that is the same in every process (Python's own `hash` of a str is salted)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % PERSONAL_BUCKETS
