"""Duplicate and missing ids over a whole partition, fed chunk by chunk, in little memory.

Each chunk's ids are sorted once; a chunk whose ids form a run of consecutive integers (how
feeds number their rows) is kept as its two ends, any other chunk as its sorted distinct ids
(8 bytes per id). At the end only chunks whose id ranges overlap are compared. Holding every
id and hashing them all (`pd.unique`) cost ~70 bytes per row at the partition's end: 10M rows
peaked ~0.5 GB above 1M rows.
"""

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class IdTally:
    rows: int = 0
    missing: int = 0  # null (or NaN) ids
    _duplicates: int = 0  # within chunks
    _runs: list[tuple[object, object, np.ndarray | None]] = field(default_factory=list)  # (low, high, ids)

    def add(self, ids: pa.Array | pa.ChunkedArray) -> None:
        self.rows += len(ids)
        present = pc.drop_null(
            pc.if_else(pc.is_nan(ids), None, ids) if pa.types.is_floating(ids.type) else ids
        )
        self.missing += len(ids) - len(present)
        if not len(present):
            return
        # Sort + mask, not np.unique: numpy 2.4's unique took 10.7 ms per 100k ids, this 1.0 ms.
        values = np.sort(present.to_numpy(zero_copy_only=False))
        distinct = values[np.concatenate(([True], values[1:] != values[:-1]))]
        self._duplicates += len(values) - len(distinct)
        low, high = distinct[0], distinct[-1]
        consecutive = np.issubdtype(distinct.dtype, np.integer) and int(high) - int(low) + 1 == len(distinct)
        self._runs.append((low, high, None if consecutive else distinct))

    @property
    def duplicates(self) -> int:
        """Rows whose id an earlier row already had (missing ids count as one value, as in
        `len(ids) - len(pd.unique(ids))`)."""
        return self._duplicates + max(self.missing - 1, 0) + self._across_chunks()

    def _across_chunks(self) -> int:
        duplicates, group, group_high = 0, [], None
        for run in sorted(self._runs, key=lambda r: r[0]):
            if group and run[0] > group_high:
                duplicates += _overlaps(group)
                group = []
            group.append(run)
            group_high = run[1] if len(group) == 1 else max(group_high, run[1])
        return duplicates + _overlaps(group)


def _overlaps(group: list) -> int:
    """Ids repeated across the chunks of a group with overlapping ranges (each chunk distinct)."""
    if len(group) < 2:
        return 0
    values = np.concatenate(
        [ids if ids is not None else np.arange(low, high + 1) for low, high, ids in group]
    )
    values.sort()
    return int(np.count_nonzero(values[1:] == values[:-1]))
