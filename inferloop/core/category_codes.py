"""The model's categorical encoder: strings or pandas categoricals to the training categories' codes.

Saved inside every model (MLflow `code_paths`), so this module imports nothing of inferloop.
"""

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


class CategoryCodeEncoder(TransformerMixin, BaseEstimator):
    """Categorical columns as the code of their value among the categories seen in training
    (sorted, as OrdinalEncoder orders them), then the numeric columns; one float64 matrix.

    A missing or unseen value encodes as NaN, which the booster treats as missing (as
    OrdinalEncoder with unknown_value=NaN did). Why not OrdinalEncoder: it looks up every value
    of an object column in a Python dict (~0.3 us per value, as long as the booster's own
    prediction). Here a pandas categorical column (a parquet dictionary column, read as such)
    costs one lookup per distinct value plus a vectorised `take` of its codes; strings are
    hashed in C (pandas `Index.get_indexer`).
    """

    def __init__(self, categorical: list[str], numeric: list[str]):
        self.categorical = categorical
        self.numeric = numeric

    def fit(self, X: pd.DataFrame, y=None):
        self.categories_ = [
            np.array(sorted({str(v) for v in X[column].dropna().unique()}), dtype=object)
            for column in self.categorical
        ]
        self.feature_names_in_ = np.array([*self.categorical, *self.numeric], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        encoded = np.empty((len(X), len(self.categorical) + len(self.numeric)), dtype=np.float64)
        for i, (column, categories) in enumerate(zip(self.categorical, self.categories_, strict=True)):
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

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return self.feature_names_in_.copy()
