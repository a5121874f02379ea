"""`inferloop expectations suggest`: propose suites from a reference window, for review."""

from datetime import date
from pathlib import Path

import pandas as pd

from inferloop.core.dataset import DatasetSpec
from inferloop.core.settings import Settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import days_between, load_labelled_day
from inferloop.tasks.gate.expectations import open_gx_project_for_edit, save_suite, suggest_expectations


def propose_suites(
    storage: Storage, spec: DatasetSpec, start: date, end: date, settings: Settings
) -> list[Path]:
    """Write training and inference suites proposed from `start`..`end` into expectations/.

    The files are a proposal: review the diff (`git diff expectations/`) and commit it; the
    committed suites are the ones every flow uses.
    """
    days = days_between(start, end)
    frames = [load_labelled_day(storage, spec, day) for day in days]
    reference = pd.concat(frames, ignore_index=True)
    daily_rows = [len(frame) for frame in frames]
    context = open_gx_project_for_edit(settings.gate)
    return [
        save_suite(context, spec, purpose, suggest_expectations(reference, spec, purpose, daily_rows))
        for purpose in ("training", "inference")
    ]
