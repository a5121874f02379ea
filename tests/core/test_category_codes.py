import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st
from sklearn.preprocessing import OrdinalEncoder

from inferloop.core.category_codes import CategoryCodeEncoder

VALUES = st.lists(st.sampled_from(["a", "b", "c", "zz", None]), min_size=1, max_size=40)


def reference_codes(train: list, rows: list) -> np.ndarray:
    """What the pipeline's OrdinalEncoder (unseen and missing → NaN) gave for the same values.
    (It took None for a category of its own; missing is NaN here, as it was for dictionary
    columns, the way scoring reads them.)"""
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
    )

    def column(values: list) -> pd.DataFrame:
        return pd.DataFrame({"c": pd.Series([np.nan if v is None else v for v in values], dtype=object)})

    return encoder.fit(column(train)).transform(column(rows))[:, 0]


@given(train=VALUES, rows=VALUES)
def test_codes_match_ordinal_encoder_for_strings_and_dictionary_columns(train, rows):
    if all(v is None for v in train):
        train = [*train, "a"]
    encoder = CategoryCodeEncoder(["c"], ["x"]).fit(pd.DataFrame({"c": train, "x": 0.0}))
    expected = reference_codes(train, rows)
    as_strings = pd.DataFrame({"c": pd.Series(rows, dtype=object), "x": 1.5})
    # A parquet dictionary column read into pandas: its own categories, in its own order.
    dictionary = pa.array(rows, pa.string()).dictionary_encode()
    as_categorical = pd.DataFrame({"c": dictionary.to_pandas(), "x": 1.5})
    for frame in (as_strings, as_categorical):
        encoded = encoder.transform(frame)
        np.testing.assert_array_equal(encoded[:, 0], expected)
        assert (encoded[:, 1] == 1.5).all()


def test_categoricals_come_first_then_numerics_as_float64():
    frame = pd.DataFrame({"x": [1, 2], "c": ["b", "a"], "y": [0.5, None]})
    encoded = CategoryCodeEncoder(["c"], ["x", "y"]).fit(frame).transform(frame)
    assert encoded.dtype == np.float64
    np.testing.assert_array_equal(encoded, [[1.0, 1.0, 0.5], [0.0, 2.0, np.nan]])
