"""Every location in the data lake, defined once: code asks here and never spells a lake path.

Paths are relative to the lake root (`Storage` does the I/O). Partitions are directories named
`date=YYYY-MM-DD` by their first day, whatever the spec's unit (core/periods.py): `D` below is a
day, or the Monday of a week, or the 1st of a month; an hour is `date=YYYY-MM-DDTHH`. Layout:

    <dataset>/date=D/part-0.parquet                      features as production sends them (no label)
    <dataset>/date=D/part-import.parquet                 features written by `inferloop data import`
    <dataset>_labels/date=A/part-D.parquet               labels of event day D, by arrival day A
    validation/<suite>/date=D/report.json                the gate's latest verdict on a partition
    quarantine/<suite>/date=D/part-0.parquet             rows the gate quarantined
    quarantine/import/<dataset>/part-<hash>.parquet      rows an import could not conform
                                                         (not by day: retention leaves it alone)
    predictions/model=NAME/version=V/date=D/             scored rows (part-0.parquet) + _manifest.json
    monitoring/<dataset>/date=D/                         report.json, metrics.parquet, history.png
    monitoring/<dataset>/retrain_decisions/date=D/       decisions.json (the retrain ledger)
    replay/<dataset>/<start>_<end>.parquet               a replay's day-by-day table
    replay/<dataset>/<start>_<end>_comparison.*          the loop vs its baselines: .parquet
                                                         (a row per policy), .json, .png (chart)
    online/<model>/date=D/                               request logs of an online server (reserved)
    online/predictions/model=NAME/date=D/part-<t>-<u>.parquet
                                                         rows `inferloop serve` scored, by event day:
                                                         append-only, each file appears whole (no manifest)

A partition is complete only when its `_manifest.json` exists: data files are written first,
the manifest last. Changing a name here moves data on disk: existing lakes keep the old one.
"""

import hashlib
from datetime import date

from inferloop.core.periods import format_key, parse_key

PARTITION_KEY = "date="
VERSION_KEY = "version="
MODEL_KEY = "model="
MANIFEST = "_manifest.json"
DATA_FILE = "part-0.parquet"  # the one data file of a partition written in one go
IMPORTED_FEATURES_FILE = "part-import.parquet"

PREDICTIONS = "predictions"
QUARANTINE = "quarantine"
VALIDATION = "validation"
MONITORING = "monitoring"
REPLAY = "replay"
ONLINE = "online"


# Day partitions


def partition_name(day: date) -> str:
    """The directory name of `day`'s partition: `date=YYYY-MM-DD` (an hour: `date=YYYY-MM-DDTHH`)."""
    return f"{PARTITION_KEY}{format_key(day)}"


def partition_day(name: str) -> date:
    """The key of a partition directory name (`date=YYYY-MM-DD`, or an hour's)."""
    return parse_key(name.removeprefix(PARTITION_KEY))


def partition_dir(table: str, day: date) -> str:
    return f"{table}/{partition_name(day)}"


def manifest(partition: str) -> str:
    """The commit record of a partition directory."""
    return f"{partition}/{MANIFEST}"


# Features and labels, as production sends them


def features_table(dataset: str) -> str:
    return dataset


def labels_table(dataset: str) -> str:
    return f"{dataset}_labels"


def features(dataset: str, day: date) -> str:
    """The feature partition of event day `day` (one or more parquet files)."""
    return partition_dir(features_table(dataset), day)


def features_file(dataset: str, day: date) -> str:
    """The feature file of a day written whole (the synthetic feed)."""
    return f"{features(dataset, day)}/{DATA_FILE}"


def imported_features_file(dataset: str, day: date) -> str:
    """The feature file `inferloop data import` writes for a day (a later import replaces it)."""
    return f"{features(dataset, day)}/{IMPORTED_FEATURES_FILE}"


def labels(dataset: str, arrival_day: date) -> str:
    """The labels that arrived on `arrival_day` (one file per event day)."""
    return partition_dir(labels_table(dataset), arrival_day)


def labels_file(dataset: str, arrival_day: date, event_day: date) -> str:
    """The labels of `event_day`'s events, in the partition of the day they arrived."""
    return f"{labels(dataset, arrival_day)}/part-{format_key(event_day)}.parquet"


# The data-quality gate


def validation_report(suite: str, day: date, part: str | None = None) -> str:
    """The gate's latest verdict on a partition, or on its files named `part` that arrived late."""
    return f"{partition_dir(f'{VALIDATION}/{suite}', day)}/{f'report-{part}' if part else 'report'}.json"


def quarantine_table(suite: str) -> str:
    """Every day's quarantine of a gate suite (`date=D` partitions)."""
    return f"{QUARANTINE}/{suite}"


def quarantine(suite: str, day: date) -> str:
    """The rows the gate quarantined from a partition, with their reasons."""
    return partition_dir(quarantine_table(suite), day)


def quarantine_file(suite: str, day: date, part: str | None = None) -> str:
    return f"{quarantine(suite, day)}/{f'{part}.parquet' if part else DATA_FILE}"


def import_quarantine_file(dataset: str, source_sha256: str) -> str:
    """One file per source content: re-importing the same file rewrites the same file."""
    return f"{QUARANTINE}/import/{dataset}/part-{source_sha256[:16]}.parquet"


# Predictions


def model_predictions(model: str) -> str:
    """Every version's predictions of a registered model (`version=V` directories)."""
    return f"{PREDICTIONS}/{MODEL_KEY}{model}"


def version_predictions(model: str, version: str) -> str:
    """One model version's predictions: a partition per day it scored."""
    return f"{model_predictions(model)}/{VERSION_KEY}{version}"


def predictions(model: str, version: str, day: date) -> str:
    """One model version's predictions partition of `day`: data file(s) + manifest."""
    return partition_dir(version_predictions(model, version), day)


def predictions_file(model: str, version: str, day: date, part: str | None = None) -> str:
    return f"{predictions(model, version, day)}/{f'{part}.parquet' if part else DATA_FILE}"


def late_part(files: list[str]) -> str:
    """The name (without .parquet) of the outputs made from files that arrived after their day
    was processed: one per set of files, so a rerun rewrites the same file."""
    return "part-" + hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


def predictions_manifest(model: str, version: str, day: date) -> str:
    return manifest(predictions(model, version, day))


def holdout_predictions(model: str, version: str) -> str:
    """Scores of a version's validation fit on its held-out rows (id, score): the honest evidence
    promotion compares on when the registered model was refitted on the whole window."""
    return f"{version_predictions(model, version)}/_holdout.parquet"  # "_": not a partition to readers


def version_of(directory_name: str) -> str:
    """The model version of a `version=V` directory name."""
    return directory_name.removeprefix(VERSION_KEY)


def any_version_and_day(predictions_uri: str) -> str:
    """A predictions partition's URI with its version and day left open
    (`.../model=NAME/version=V/date=D`): where every partition of that model goes."""
    model_uri = predictions_uri.rsplit(f"/{VERSION_KEY}", 1)[0]
    return f"{model_uri}/{VERSION_KEY}V/{PARTITION_KEY}D"


# Monitoring


def monitoring(dataset: str) -> str:
    """The daily monitoring partitions of a dataset."""
    return f"{MONITORING}/{dataset}"


def monitoring_day(dataset: str, day: date) -> str:
    """One day's monitoring folder: report, metrics and history chart."""
    return partition_dir(monitoring(dataset), day)


def monitoring_report(dataset: str, day: date) -> str:
    return f"{monitoring_day(dataset, day)}/report.json"


def monitoring_metrics(dataset: str, day: date) -> str:
    return f"{monitoring_day(dataset, day)}/metrics.parquet"


def history_chart_file(dataset: str, day: date) -> str:
    return f"{monitoring_day(dataset, day)}/history.png"


def retrain_decisions(dataset: str) -> str:
    """The retrain ledger: every retrain and suppressed trigger, by day."""
    return f"{monitoring(dataset)}/retrain_decisions"


def retrain_decisions_file(dataset: str, day: date) -> str:
    return f"{partition_dir(retrain_decisions(dataset), day)}/decisions.json"


# Replay and online serving


def replay_table(dataset: str, start: date, end: date) -> str:
    return f"{REPLAY}/{dataset}/{format_key(start)}_{format_key(end)}.parquet"


def _replay_comparison_stem(dataset: str, start: date, end: date) -> str:
    return f"{REPLAY}/{dataset}/{format_key(start)}_{format_key(end)}_comparison"


def replay_comparison(dataset: str, start: date, end: date) -> str:
    """The loop against its baselines over a replay: one row per policy."""
    return f"{_replay_comparison_stem(dataset, start, end)}.parquet"


def replay_comparison_json(dataset: str, start: date, end: date) -> str:
    """The whole comparison (policies, metric over time, verdict) as JSON."""
    return f"{_replay_comparison_stem(dataset, start, end)}.json"


def replay_comparison_chart(dataset: str, start: date, end: date) -> str:
    """The monitored metric over time, one line per policy."""
    return f"{_replay_comparison_stem(dataset, start, end)}.png"


def online_requests(model: str, day: date) -> str:
    """Request logs of an online server for `model` (reserved for the serving process)."""
    return partition_dir(f"{ONLINE}/{model}", day)


def online_predictions_root() -> str:
    """Where the online predictions of every model are (`model=NAME` directories)."""
    return f"{ONLINE}/{PREDICTIONS}"


def online_predictions_table(model: str) -> str:
    """Every event day's online predictions of `model` (`date=D` partitions)."""
    return f"{online_predictions_root()}/{MODEL_KEY}{model}"


def online_predictions(model: str, day: date) -> str:
    """Rows the online endpoint scored for `model` (any version: a column says which), of event
    day `day`. Append-only: each flush adds one file, which appears whole or not at all."""
    return partition_dir(online_predictions_table(model), day)


def online_predictions_file(model: str, day: date, part: str) -> str:
    """One flush's file in a day's online predictions partition (`part` names the flush)."""
    return f"{online_predictions(model, day)}/part-{part}.parquet"
