"""Personal data planted in a feed is found nowhere but in the feed itself after the whole loop.

A spec with a personal feature (`customer_age`) and a personal column forbidden as a feature
(`customer_email`, dropped at import), marker values in both (tests/fixtures/personal_data.py);
then the loop from the CLI on real Prefect (test harness), MLflow (SQLite store), GX and a lake
folder: import (one row quarantined), propose suites (plus a range on the age, as a person
might add: GX then sees personal values fail), train, score two days (one with quarantined
rows), monitor. Every store is then searched for the markers: the lake (but the
imported feature partitions, which hold the data by design), the MLflow database and artifacts,
the Prefect database (runs, artifacts, logs), GX's results and Data Docs, the proposed suites,
the state dir and everything the commands printed. Parquet files and zip archives (a skops
model) are searched decoded as well as raw, numbers in their text and binary forms.
"""

import hashlib
import hmac
import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from inferloop.cli.commands import app
from inferloop.core import catalog
from inferloop.core.settings import REPO_ROOT, load_settings
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.gate.expectations import open_gx_project_for_edit, row_level
from tests.conftest import SESSION_DIR
from tests.fixtures.personal_data import (
    AGE_MARKERS,
    NAME,
    NOT_A_NUMBER_AGE,
    QUARANTINED_AGE_MARKERS,
    TEXT_MARKER,
    personal_source,
    personal_spec,
)

pytestmark = pytest.mark.slow

FEED = GeneratorConfig(days=10, rows_per_day=600)
TRAIN = (FEED.day(0), FEED.day(6))
SCORED = (FEED.day(7), FEED.day(8))  # labels of the first arrive on the second: monitored
SPOILED = 7  # index of the scored day whose marker rows the gate quarantines


def marker_forms() -> dict[str, bytes]:
    """Each marker as the bytes it would leave behind: text, and numbers as text and binary."""
    forms = {f"text {TEXT_MARKER}": TEXT_MARKER.encode()}
    for number in (*AGE_MARKERS, *QUARANTINED_AGE_MARKERS):
        forms[f"{number!r}"] = repr(number).encode()
        forms[f"{number!r} as float64"] = struct.pack("<d", number)
        forms[f"{number!r} as big-endian float64"] = struct.pack(">d", number)
    return forms


def readable_forms(path: Path, raw: bytes) -> list[bytes]:
    """The file's bytes, plus what compression hides: parquet values as text, zip members."""
    forms = [raw]
    if raw[:4] == b"PAR1":
        forms.append(str(pq.read_table(path).to_pylist()).encode())
    if zipfile.is_zipfile(io.BytesIO(raw)):
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            forms += [archive.read(member) for member in archive.namelist()]
    return forms


def hits(roots: list[Path], skip: tuple[Path, ...] = ()) -> list[str]:
    """`file: marker` for every marker form found in any file under `roots`."""
    found, forms = [], marker_forms()
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if any(path.is_relative_to(s) for s in skip):
                continue
            contents = readable_forms(path, path.read_bytes())
            found += [f"{path}: {name}" for name, form in forms.items() if any(form in c for c in contents)]
    return found


def found_markers(found: list[str]) -> set[str]:
    return {hit.split(": ", 1)[1] for hit in found}


def prefect_database_dir() -> Path:
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    url = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url)
    return Path(url.split(":///", 1)[1]).parent


def flush_prefect_logs() -> None:
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)


@pytest.fixture
def personal_loop(prefect_harness, workdir, monkeypatch):
    """The env of a loop on the personal-data spec, every store under `workdir`."""
    expectations = workdir / "expectations"
    shutil.copytree(REPO_ROOT / "expectations", expectations)
    for name, value in {
        "DATASET_SPEC": str(personal_spec(workdir)),
        "EXPECTATIONS_DIR": str(expectations),
        "MLFLOW_ARTIFACT_ROOT": str(workdir / "mlartifacts"),
        "GX_RUNTIME_DIR": str(workdir / "gx"),
        "PERSONAL_DATA_KEY_FILE": str(workdir / "personal_data.key"),
        "MODEL_NAME": "card-customers",
        "MIN_ROC_AUC": "0.5",  # the bootstrap champion: this test is about where values go
    }.items():
        monkeypatch.setenv(f"INFERLOOP_{name}", value)
    source = workdir / "source" / "customers.csv"
    source.parent.mkdir()
    personal_source(FEED, quarantined_day=SPOILED).to_csv(source, index=False)
    return source


def expect_a_plausible_age() -> None:
    """A row-level range on the personal age in the inference suite, as a reviewer might add."""
    import great_expectations.expectations as gxe

    context = open_gx_project_for_edit(load_settings().gate)
    suite = context.suites.get(f"{NAME}_inference")
    suite.add_expectation(
        row_level(gxe.ExpectColumnValuesToBeBetween, column="customer_age", min_value=0, max_value=130)
    )
    suite.save()


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_planted_personal_values_are_found_nowhere_but_in_the_feed(personal_loop, workdir, capfd):
    printed = [
        run("data", "import", "--source", str(personal_loop)),
        run("expectations", "suggest", "--from", f"{TRAIN[0]}..{TRAIN[1]}"),
    ]
    expect_a_plausible_age()
    printed += [
        run("train", "--start", str(TRAIN[0]), "--end", str(TRAIN[1])),
        run("infer", "--from", str(SCORED[0]), "--to", str(SCORED[1])),
        run("monitor", "--date", str(SCORED[1])),
    ]
    flush_prefect_logs()
    printed.append("".join(capfd.readouterr()))

    settings = load_settings()
    lake = workdir / "lake"
    key = (workdir / "personal_data.key").read_text().strip().encode()
    quarantine = lake / catalog.quarantine_file(f"{NAME}_inference", SCORED[0])
    quarantined = pq.read_table(quarantine).to_pandas()
    # The loop ran as planned: the marker ages were quarantined, the next day was monitored.
    assert len(quarantined) == len(AGE_MARKERS) + len(QUARANTINED_AGE_MARKERS)
    assert (lake / catalog.monitoring_report(NAME, SCORED[1])).exists()

    # The quarantine holds the keyed hash of each personal value, never the value.
    keyed = {
        "hmac-sha256:" + hmac.new(key, repr(age).encode(), hashlib.sha256).hexdigest()
        for age in (*AGE_MARKERS, *QUARANTINED_AGE_MARKERS)
    }
    assert set(quarantined["customer_age"]) == keyed
    offending = [json.loads(v) for v in quarantined["_offending_values"]]
    assert {o["customer_age"] for o in offending} == keyed
    (imported_bad,) = (lake / "quarantine" / "import" / NAME).glob("*.parquet")
    import_quarantine = pq.read_table(imported_bad).to_pandas()
    assert import_quarantine["customer_age"].tolist() == [
        "hmac-sha256:" + hmac.new(key, NOT_A_NUMBER_AGE.encode(), hashlib.sha256).hexdigest()
    ]

    # The search can find what it looks for: the feed holds every marker (the e-mail addresses
    # only in the source: the spec drops them at import).
    features = lake / catalog.features_table(NAME)
    assert found_markers(hits([features])) >= {repr(n) for n in AGE_MARKERS}
    assert f"text {TEXT_MARKER}" in found_markers(hits([personal_loop.parent]))

    # Under workdir: the lake (quarantine, predictions, manifests, reports, held-out scores,
    # monitoring), the MLflow database and artifacts, GX's results and Data Docs, the proposed
    # suites. Then the Prefect database (runs, artifacts, logs, events) and the state dir.
    assert settings.registry.tracking_uri == f"sqlite:///{workdir / 'mlflow.db'}"
    assert (workdir / "mlartifacts").is_dir() and (workdir / "gx").is_dir()
    stores = [workdir, prefect_database_dir(), SESSION_DIR / "state"]
    found = hits(stores, skip=(features, personal_loop.parent))
    found += [
        f"printed: {name}" for name, form in marker_forms().items() if form in "".join(printed).encode()
    ]
    assert found == []
