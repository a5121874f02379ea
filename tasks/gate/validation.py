"""The gate's verdict on a partition, as one typed object for flows, the CLI and the UIs."""

from dataclasses import asdict, dataclass, field

from inferloop.core.errors import InferloopError


class BatchRefusedError(InferloopError):
    """The gate refused a partition; `report` says which expectations failed and why."""

    def __init__(self, report: "ValidationReport"):
        self.report = report
        super().__init__(
            f"The data-quality gate refused {report.suite} for {report.partition_date}: "
            + "; ".join(report.reasons)
            + ". Nothing was written for this partition; fix the feed (or review the suite "
            "in expectations/) and rerun."
        )


@dataclass
class ExpectationOutcome:
    name: str
    severity: str
    success: bool
    unexpected_count: int = 0
    gx_unexpected_count: int | None = None
    detail: str = ""


@dataclass
class ValidationReport:
    """The gate's verdict on one partition: used by flows, the CLI and the UI artifacts alike."""

    dataset: str
    suite: str
    partition_date: str
    rows_in: int
    rows_passed: int
    rows_quarantined: int
    rows_refused: int  # rows of a refused partition: none pass, none are quarantined
    decision: str  # "accepted" | "refused"
    reasons: list[str] = field(default_factory=list)
    expectations: list[ExpectationOutcome] = field(default_factory=list)
    quarantine_uri: str | None = None
    data_docs_uri: str | None = None
    gx_rows_validated: int = 0  # GX's own counts cover these rows; the gate's cover all

    @property
    def refused(self) -> bool:
        return self.decision == "refused"

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if not e.success or e.unexpected_count]

    def to_dict(self) -> dict:
        return asdict(self)
