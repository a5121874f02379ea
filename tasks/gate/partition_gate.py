"""The data-quality gate: GX suites decide, a vectorised mask from the same suites quarantines.

A partition is checked chunk by chunk (so memory stays bounded), then decided once. GX runs
the whole suite on the first `gx_sample_rows` rows of each file (schema and types are per file
in parquet, so that verdict holds for every row; it also feeds Data Docs); row-level checks,
id uniqueness and the row count are evaluated on every row, vectorised on Arrow data.
- a failed `critical` expectation (schema, types, id uniqueness, row count) refuses it;
- rows failing a `row` expectation (nulls, ranges, unseen categories, timestamps outside the
  day) are quarantined with the names of what they failed and the offending values; a share
  above the expectation's `mostly` tolerance refuses it, and so does a share of rows failing
  expectations without one above `max_quarantine_share`.
Rows in = rows passed + rows quarantined, asserted for every partition.
"""

from collections.abc import Iterable, Iterator
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from prefect import task

from inferloop.core import catalog
from inferloop.core.dataset import DatasetSpec
from inferloop.core.errors import InferloopError
from inferloop.core.periods import DAILY, Partitioning
from inferloop.core.personal_data import Pseudonymiser
from inferloop.core.settings import GateSettings, ScoringSettings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import load_labelled_day, partition_files, stored_partitions_in
from inferloop.tasks.gate.expectations import Purpose, suite_definitions, suite_name
from inferloop.tasks.gate.gx_runs import GxRun, validate
from inferloop.tasks.gate.id_uniqueness import IdTally
from inferloop.tasks.gate.row_checks import (
    Columnar,
    any_failed,
    count,
    describe_failed_rows,
    expectation_name,
    row_failures,
)
from inferloop.tasks.gate.validation import BatchRefusedError, ExpectationOutcome, ValidationReport

# Decided on the whole partition in `finish`, from every row (GX sees only a sample).
PARTITION_LEVEL = {"expect_table_row_count_to_be_between", "expect_column_values_to_be_unique"}
# With gx_scope=schema: GX's verdicts per (suite, file schema), reused by later partitions. Its
# critical checks (columns, types) depend on the schema alone; the rest is decided on every row.
GX_VERDICTS: dict[tuple[str, pa.Schema], tuple[dict, dict, str | None]] = {}


def partition_parameters(day: date, partitioning: Partitioning = DAILY) -> dict[str, pd.Timestamp]:
    """Suite parameters of a partition: its first and last instant."""
    return {
        "partition_start": pd.Timestamp(partitioning.start(day)),
        "partition_end": pd.Timestamp(partitioning.end(day)) - pd.Timedelta(microseconds=1),
    }


class PartitionGate:
    """Checks one partition chunk by chunk with a committed suite, then decides once."""

    def __init__(
        self,
        storage: Storage,
        spec: DatasetSpec,
        purpose: Purpose,
        day: date,
        gate: GateSettings,
        part: str | None = None,
    ):
        self.storage, self.spec, self.day = storage, spec, day
        self.part = part  # files that arrived after the day was gated: their own report and quarantine
        self.suite_name = suite_name(spec, purpose)
        self.purpose, self.gate_settings = purpose, gate
        self.expectations = suite_definitions(gate, spec, purpose)
        self.configs = {expectation_name(c): c for c in self.expectations}
        self.parameters = partition_parameters(day, spec.partitioning)
        self.max_quarantine_share = gate.max_quarantine_share
        self.rows_in = 0
        self.rows_quarantined = 0
        self.rows_untolerated = 0  # failing an expectation with no `mostly` of its own
        self.mask_counts = dict.fromkeys(self.configs, 0)
        self.gx_counts: dict[str, int | None] = dict.fromkeys(self.configs)
        self.gx_success = dict.fromkeys(self.configs, True)
        self.details: dict[str, str] = {}
        self.ids = IdTally()  # id uniqueness and presence over every row
        self.quarantined: list[pd.DataFrame] = []
        self.personal = Pseudonymiser.for_spec(spec, gate)
        self.gx_sample_rows = gate.gx_sample_rows
        self.gx_scope = gate.gx_scope
        self.gx_rows = 0  # rows GX itself validated (its counts are over these)
        self.data_docs_uri: str | None = None
        self._gx_schemas: list[pa.Schema] = []

    @property
    def critical_failed(self) -> bool:
        """A critical expectation already failed on some chunk: the partition will be refused."""
        return any(
            not ok
            for name, ok in self.gx_success.items()
            if self.configs[name].meta.get("severity", "critical") == "critical"
            and self.configs[name].type not in PARTITION_LEVEL
        )

    def check(self, data: Columnar) -> Columnar:
        """Validate one chunk; return its rows that pass. Failing rows are kept for quarantine."""
        if data.schema not in self._gx_schemas:
            self._gx_verdict(data)
            self._gx_schemas.append(data.schema)
        masks = row_failures(data, self.expectations, self.parameters)
        bad = any_failed(masks, data.num_rows)
        bad_rows = count(bad)
        self.rows_in += data.num_rows
        if self.spec.id_column in data.schema.names:
            self.ids.add(data.column(self.spec.id_column))
        if not bad_rows:
            return data
        for name, mask in masks.items():
            self.mask_counts[name] += count(mask)
        untolerated = {n: m for n, m in masks.items() if self._tolerance(n) is None}
        self.rows_untolerated += count(any_failed(untolerated, data.num_rows))
        self.quarantined.append(describe_failed_rows(data, self.configs, masks, bad, self.personal))
        self.rows_quarantined += bad_rows
        return data.filter(pc.invert(bad))

    def _tolerance(self, name: str) -> float | None:
        """The expectation's own `mostly`: its failing rows are judged by it, not by the overall cap."""
        return self.configs[name].kwargs.get("mostly")

    def _gx_verdict(self, data: Columnar) -> None:
        key = (self.suite_name, data.schema)
        if self.gx_scope == "schema" and key in GX_VERDICTS:
            success, details, self.data_docs_uri = GX_VERDICTS[key]
            for name, ok in success.items():
                self.gx_success[name] &= ok
            self.details.update(details)
            return
        self._record(self._run_gx(decoded(data.slice(0, self.gx_sample_rows)).to_pandas()))
        if self.gx_scope == "schema":
            critical = {
                n for n, c in self.configs.items() if c.meta.get("severity", "critical") == "critical"
            }
            GX_VERDICTS[key] = (
                {n: ok for n, ok in self.gx_success.items() if n in critical},
                {n: text for n, text in self.details.items() if n in critical},
                self.data_docs_uri,
            )

    def _run_gx(self, sample: pd.DataFrame) -> GxRun:
        self.gx_rows += len(sample)
        return validate(self.gate_settings, self.spec, self.purpose, sample, self.parameters)

    def _record(self, run: GxRun) -> None:
        checked = {result.name for result in run.results}
        if checked != set(self.configs):
            raise InferloopError(
                f"The suite {self.suite_name} changed while this partition was gated (GX checked "
                f"{sorted(checked ^ set(self.configs))} differently from the suite read before): "
                "run the command again"
            )
        self.data_docs_uri = run.data_docs_uri
        for result in run.results:
            if result.unexpected_count is not None:
                self.gx_counts[result.name] = (self.gx_counts[result.name] or 0) + result.unexpected_count
            self.gx_success[result.name] &= result.success
            if not result.success:
                self.details[result.name] = result.detail

    def finish(self) -> ValidationReport:
        """Decide on the whole partition; write the quarantine of an accepted one."""
        outcomes = [self._outcome(name, config) for name, config in self.configs.items()]
        reasons = [f"{o.name}: {o.detail}" for o in outcomes if o.severity == "critical" and not o.success]
        for o in outcomes:
            mostly = self.configs[o.name].kwargs.get("mostly")
            if (
                o.severity == "row"
                and mostly is not None
                and self.rows_in
                and o.unexpected_count / self.rows_in > 1 - mostly
            ):
                reasons.append(
                    f"{o.name}: {o.unexpected_count / self.rows_in:.1%} of rows fail, "
                    f"tolerated {1 - mostly:.1%}"
                )
        share = self.rows_untolerated / self.rows_in if self.rows_in else 0.0
        if share > self.max_quarantine_share:
            untolerated = [o for o in outcomes if o.unexpected_count and self._tolerance(o.name) is None]
            most = sorted(untolerated, key=lambda o: -o.unexpected_count)[:3]
            reasons.append(
                f"{share:.1%} of rows fail row-level checks, more than "
                f"INFERLOOP_MAX_QUARANTINE_SHARE={self.max_quarantine_share:.1%} (most: "
                + ", ".join(f"{o.name} {o.unexpected_count / self.rows_in:.1%}" for o in most)
                + ")"
            )
        refused = bool(reasons)
        report = ValidationReport(
            dataset=self.spec.name,
            suite=self.suite_name,
            partition_date=self.day.isoformat(),
            rows_in=self.rows_in,
            rows_passed=0 if refused else self.rows_in - self.rows_quarantined,
            rows_quarantined=0 if refused else self.rows_quarantined,
            rows_refused=self.rows_in if refused else 0,
            decision="refused" if refused else "accepted",
            reasons=reasons,
            expectations=outcomes,
            data_docs_uri=self.data_docs_uri,
            gx_rows_validated=self.gx_rows,
        )
        if report.rows_in != report.rows_passed + report.rows_quarantined + report.rows_refused:
            raise AssertionError(f"Gate accounting broken: {report}")
        self.storage.write_json(
            catalog.validation_report(self.suite_name, self.day, self.part), report.to_dict()
        )
        if not report.refused and self.quarantined:
            path = catalog.quarantine_file(self.suite_name, self.day, self.part)
            self.storage.write_table(
                path, pa.Table.from_pandas(pd.concat(self.quarantined), preserve_index=False)
            )
            report.quarantine_uri = self.storage.uri(catalog.quarantine(self.suite_name, self.day))
        return report

    def _outcome(self, name: str, config) -> ExpectationOutcome:
        severity = config.meta.get("severity", "critical")
        outcome = ExpectationOutcome(
            name=name,
            severity=severity,
            success=self.gx_success[name],
            gx_unexpected_count=self.gx_counts[name],
            detail=self.details.get(name, ""),
        )
        if severity == "row":
            outcome.unexpected_count = self.mask_counts[name]
            outcome.success = outcome.unexpected_count == 0
        elif config.type == "expect_column_values_to_be_unique" and self.ids.rows:
            duplicates = self.ids.duplicates
            outcome.success, outcome.unexpected_count = duplicates == 0, duplicates
            outcome.detail = f"{duplicates} duplicated ids" if duplicates else ""
        elif (
            config.type == "expect_column_values_to_not_be_null"
            and self.ids.rows
            and (config.kwargs.get("column") == self.spec.id_column)
        ):  # GX saw a sample; every row needs an id
            missing = self.ids.missing
            outcome.success, outcome.unexpected_count = missing == 0, missing
            outcome.detail = f"{missing} rows without an id" if missing else ""
        elif config.type == "expect_table_row_count_to_be_between":
            low, high = config.kwargs.get("min_value"), config.kwargs.get("max_value")
            outcome.success = (low is None or self.rows_in >= low) and (high is None or self.rows_in <= high)
            outcome.detail = (
                "" if outcome.success else (f"{self.rows_in} rows, expected between {low} and {high}")
            )
        else:
            outcome.unexpected_count = self.gx_counts[name] or 0
        return outcome


def gate_refused(storage: Storage, spec: DatasetSpec, purpose: Purpose, day: date) -> bool:
    """True when the gate's latest verdict on this partition is a refusal."""
    record = catalog.validation_report(suite_name(spec, purpose), day)
    return storage.exists(record) and storage.read_json(record)["decision"] == "refused"


def decoded(data: Columnar) -> Columnar:
    """Dictionary-encoded columns as plain values: GX checks the types production sends."""
    columns = [
        pc.cast(column, column.type.value_type) if pa.types.is_dictionary(column.type) else column
        for column in data.columns
    ]
    return type(data).from_arrays(columns, names=data.schema.names)


def passing_chunks(gate: PartitionGate, chunks: Iterable[Columnar]) -> Iterator[Columnar]:
    """The rows of each chunk that pass `gate`. Stops at the first critical failure: the rest of
    the partition cannot change the verdict, and its rows may not even have the right columns."""
    for chunk in chunks:
        passed = gate.check(chunk)
        if gate.critical_failed:
            return
        yield passed


def decide(gate: PartitionGate) -> ValidationReport:
    """The gate's verdict on everything it checked; raise BatchRefusedError on refusal."""
    report = gate.finish()
    if report.refused:
        raise BatchRefusedError(report)
    return report


@task(name="gate-training-window")
def gate_training_window(
    storage: Storage,
    spec: DatasetSpec,
    start: date,
    end: date,
    gate_settings: GateSettings,
) -> tuple[pd.DataFrame, list[ValidationReport]]:
    """Each labelled partition of the window through the training suite; the rows that pass.
    A period with no partition is a gap in the feed (a weekend, a quiet hour), not an error.

    Refuses the whole window (BatchRefusedError) if any day is refused: no model is trained
    on a broken feed.
    """
    days = stored_partitions_in(storage, spec, start, end, "import or generate it first")
    passed, reports = [], []
    for day in days:
        gate = PartitionGate(storage, spec, "training", day, gate_settings)
        labelled = pa.Table.from_pandas(load_labelled_day(storage, spec, day), preserve_index=False)
        passed += [table.to_pandas() for table in passing_chunks(gate, [labelled])]
        reports.append(decide(gate))
    return pd.concat(passed, ignore_index=True), reports


@task(name="validate-partition")
def validate_partition(
    storage: Storage,
    spec: DatasetSpec,
    purpose: Purpose,
    day: date,
    gate_settings: GateSettings,
    scoring: ScoringSettings,
) -> ValidationReport:
    """The gate alone on one partition (streamed); quarantine written, nothing else."""
    gate = PartitionGate(storage, spec, purpose, day, gate_settings)
    if purpose == "training":
        chunks = [pa.Table.from_pandas(load_labelled_day(storage, spec, day), preserve_index=False)]
    else:
        chunks = (
            batch
            for f in partition_files(storage, spec, day)
            for batch in storage.iter_batches(f, scoring.score_batch_rows, spec.categorical_features)
        )
    for _ in passing_chunks(gate, chunks):
        pass
    return gate.finish()
