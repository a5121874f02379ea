"""Score one partition in this process (the target of the kill -9 test): `python -m
tests.faults.score_one MODEL_PICKLE YYYY-MM-DD`; the lake comes from INFERLOOP_* variables."""

import pickle
import sys
from datetime import date
from pathlib import Path

from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.tasks.scoring.batch_scoring import score_partition

if __name__ == "__main__":
    model = pickle.loads(Path(sys.argv[1]).read_bytes())
    settings = load_settings()
    ref = ModelVersionRef(name="crash", version="1", run_id="run-crash")
    day = date.fromisoformat(sys.argv[2])
    score_partition.fn(
        lake_storage(settings.lake),
        settings.dataset,
        model,
        ref,
        day,
        "flow-crash",
        settings.scoring,
        settings.gate,
    )
