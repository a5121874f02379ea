import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from inferloop.tasks.gate.id_uniqueness import IdTally

IDS = st.lists(st.one_of(st.none(), st.integers(-5, 30)), max_size=60)


@given(ids=IDS, cuts=st.lists(st.integers(0, 60), max_size=5))
def test_duplicates_and_missing_match_counting_every_id_at_once(ids, cuts):
    tally = IdTally()
    bounds = [0, *sorted(cuts), len(ids)]
    for start, end in itertools.pairwise(bounds):
        tally.add(pa.array(ids[start:end], pa.int64()))
    everything = pd.array(ids, dtype="Int64").to_numpy(dtype=float, na_value=np.nan)
    assert tally.rows == len(ids)
    assert tally.missing == int(np.isnan(everything).sum())
    assert tally.duplicates == len(everything) - len(pd.unique(everything))


def test_consecutive_chunks_are_kept_as_their_ends_and_still_compared():
    tally = IdTally()
    for start in range(0, 1_000_000, 100_000):
        tally.add(pa.array(np.arange(start, start + 100_000)))
    assert tally.duplicates == 0 and all(ids is None for _, _, ids in tally._runs)
    tally.add(pa.array(np.arange(999_990, 1_000_010)))  # 10 ids the last chunk already had
    assert tally.duplicates == 10


def test_string_and_float_ids():
    strings = IdTally()
    strings.add(pa.array(["a", "b", None]))
    strings.add(pa.array(["b", "c", None]))
    assert (strings.duplicates, strings.missing) == (2, 2)  # "b" again; the second missing id
    floats = IdTally()
    floats.add(pa.array([1.0, float("nan"), 2.0]))
    assert (floats.duplicates, floats.missing) == (0, 1)
