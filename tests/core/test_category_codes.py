import json
import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st
from sklearn.preprocessing import OrdinalEncoder
from skops import io as skops_io

from inferloop.core import feature_codes
from inferloop.core.category_codes import CategoryCodeEncoder
from inferloop.core.feature_codes import FeatureCodes

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


def encoded_as_before(encoder: CategoryCodeEncoder, X: pd.DataFrame) -> np.ndarray:
    """The encoder's transform before its lookups were cached and small frames took a dict:
    a new pandas Index per column per call, pd.to_numeric per numeric column."""
    encoded = np.empty((len(X), len(encoder.categorical) + len(encoder.numeric)), dtype=np.float64)
    for i, (column, categories) in enumerate(zip(encoder.categorical, encoder.categories_, strict=True)):
        values, index = X[column], pd.Index(categories)
        if column in encoder._personal:
            encoded[:, i] = feature_codes._buckets(values)
        elif isinstance(values.dtype, pd.CategoricalDtype):
            positions = index.get_indexer(values.cat.categories.astype(str))
            table = np.append(np.where(positions >= 0, positions, np.nan), np.nan)
            encoded[:, i] = table[values.cat.codes.to_numpy()]
        else:
            if values.dtype != object:
                values = values.astype(object).where(values.notna(), None).map(str, na_action="ignore")
            positions = index.get_indexer(values)
            encoded[:, i] = np.where(positions >= 0, positions, np.nan)
    for i, column in enumerate(encoder.numeric, start=len(encoder.categorical)):
        encoded[:, i] = pd.to_numeric(X[column], errors="coerce")
    return encoded


TRAINED = ["a", "b", "1", "1.0", "nan", "None", "", "True"]
# What a caller may send in a categorical column: trained and unseen strings, their look-alikes
# of other types, and every kind of missing.
CATEGORY_VALUES = st.sampled_from(
    [*TRAINED, "zz", "A", 1, 1.0, 2, True, False, None, np.nan, pd.NA, np.str_("a"), b"a"]
)


# What a caller may send in a numeric column, and the dtype it is read as.
def numeric_column(elements: st.SearchStrategy, dtype) -> st.SearchStrategy:
    return st.lists(elements, min_size=31, max_size=31).map(lambda v: pd.Series(v, dtype=dtype))


NUMERIC_COLUMNS = st.one_of(
    numeric_column(st.floats(allow_nan=True, allow_infinity=True), "float64"),
    numeric_column(st.integers(-(2**62), 2**62), "int64"),
    numeric_column(st.booleans(), bool),
    numeric_column(st.floats(width=32, allow_nan=True), "float32"),
    numeric_column(st.sampled_from(["1", "2.5", "-3e2", "x", "", None, np.nan, 4, 5.5]), object),
    numeric_column(st.one_of(st.none(), st.integers(-5, 5)), "Int64"),
)


def category_column(values: list, kind: str) -> pd.Series:
    if kind == "object":
        return pd.Series(values, dtype=object)
    strings = [None if v is None or v is pd.NA or v is np.nan else str(v) for v in values]
    if kind == "categorical":  # a parquet dictionary column read into pandas
        return pa.array(strings, pa.string()).dictionary_encode().to_pandas()
    if kind == "string":
        return pd.Series(strings, dtype="string")
    return pd.Series([len(v) if v is not None else 0 for v in strings], dtype="int64")  # an integer column


def outcome(encode, encoder, frame):
    try:
        return encode(encoder, frame)
    except Exception as error:  # an input the old code refused must be refused alike
        return type(error)


@given(
    rows=st.integers(0, 31),
    repeat=st.sampled_from([1, 40]),  # 40: past DICT_LOOKUP_MAX_VALUES, where get_indexer answers
    values=st.lists(CATEGORY_VALUES, min_size=31, max_size=31),
    kind=st.sampled_from(["object", "categorical", "string", "int"]),
    numeric=NUMERIC_COLUMNS,
    personal=st.booleans(),
)
def test_transform_encodes_exactly_as_before(rows, repeat, values, kind, numeric, personal):
    train = pd.DataFrame({"c": TRAINED, "p": TRAINED, "x": 0.0})
    encoder = CategoryCodeEncoder(["c", "p"], ["x", "y"], ["p"] if personal else None).fit(train)
    column = category_column(values, kind)
    frame = pd.DataFrame({"c": column, "p": column, "x": numeric, "y": 2}).iloc[:rows]
    frame = pd.concat([frame] * repeat, ignore_index=True) if rows else frame
    # What a compiled model scores with: the encoding saved as JSON beside its library.
    saved = FeatureCodes.from_dict(json.loads(json.dumps(encoder.codes().to_dict())))
    for _ in range(2):  # the first call builds the lookups, the second uses them
        expected = outcome(encoded_as_before, encoder, frame)
        for encode in (CategoryCodeEncoder.transform, lambda _, rows: saved.transform(rows)):
            got = outcome(encode, encoder, frame)
            if isinstance(expected, type):
                assert got is expected
            else:
                assert got.dtype == expected.dtype and got.shape == expected.shape
                np.testing.assert_array_equal(got, expected)


def test_an_encoder_pickled_without_lookups_loads_and_encodes(tmp_path):
    """Models saved before the lookups were cached hold no `_codes_cache`; saved ones never do."""
    frame = pd.DataFrame({"c": ["b", "a", None], "x": [1.0, 2.0, None]})
    encoder = CategoryCodeEncoder(["c"], ["x"]).fit(frame)
    expected = encoder.transform(frame)  # builds the lookups
    assert "_codes_cache" not in encoder.__getstate__()
    loaded = pickle.loads(pickle.dumps(encoder))
    assert not hasattr(loaded, "_codes_cache")
    np.testing.assert_array_equal(loaded.transform(frame), expected)
    np.testing.assert_array_equal(encoder.transform(frame), expected)  # saving kept its own lookups


def test_an_encoder_saved_with_skops_needs_no_type_but_its_own(tmp_path):
    frame = pd.DataFrame({"c": ["b", "a", None], "x": [1.0, 2.0, None]})
    encoder = CategoryCodeEncoder(["c"], ["x"]).fit(frame)
    expected = encoder.transform(frame)
    path = tmp_path / "encoder.skops"
    skops_io.dump(encoder, path)
    assert skops_io.get_untrusted_types(file=path) == ["inferloop.core.category_codes.CategoryCodeEncoder"]
    loaded = skops_io.load(path, trusted=["inferloop.core.category_codes.CategoryCodeEncoder"])
    np.testing.assert_array_equal(loaded.transform(frame), expected)


def test_refitting_encodes_with_the_new_categories():
    encoder = CategoryCodeEncoder(["c"], []).fit(pd.DataFrame({"c": ["a", "b"]}))
    np.testing.assert_array_equal(encoder.transform(pd.DataFrame({"c": ["b"]})), [[1.0]])
    encoder.fit(pd.DataFrame({"c": ["b", "c"]}))
    np.testing.assert_array_equal(encoder.transform(pd.DataFrame({"c": ["b"]})), [[0.0]])
