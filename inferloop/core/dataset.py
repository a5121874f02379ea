"""The dataset spec: which columns are the id, the event time, the label and the features.

Nothing else in inferloop names a column; every step reads it from here.
"""

from datetime import date, datetime
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from inferloop.core.errors import InferloopError
from inferloop.core.periods import Partitioning, PartitionUnit

FeatureKind = Literal["numeric", "categorical"]


class DatasetSpecError(InferloopError, ValueError):
    """The dataset spec file is missing or wrong; the message names the field."""


LabelValue = str | int | bool


class LabelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    positive: LabelValue = Field(1, description="Value of the label column that means 1")
    delay_days: int = Field(
        1, ge=0, description="Partitions until a label becomes known (days for a daily feed)"
    )
    classes: list[LabelValue] | None = Field(
        None, min_length=2, description="Every valid label value; import quarantines any other"
    )

    @model_validator(mode="after")
    def _positive_is_a_class(self) -> "LabelSpec":
        if self.classes is None:
            return self
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes {self.classes} lists a value twice")
        if self.positive not in self.classes:
            raise ValueError(f"positive {self.positive!r} is not one of classes {self.classes}")
        if any(type(value) is not type(self.positive) for value in self.classes):
            raise ValueError(f"classes {self.classes} must all have the type of positive {self.positive!r}")
        return self


class RowOrderTime(BaseModel):
    """Event time rebuilt from the row number, for feeds in time order without a usable time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: datetime = Field(description="Time of the first row")
    step: str = Field(description="Time between rows, a pandas duration such as 30min or 1h")

    @field_validator("step")
    @classmethod
    def _positive_duration(cls, value: str) -> str:
        try:
            step = pd.Timedelta(value)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a duration such as 30min or 1h") from error
        if step <= pd.Timedelta(0):
            raise ValueError(f"{value!r} must be longer than zero")
        return value

    @property
    def step_timedelta(self) -> pd.Timedelta:
        return pd.Timedelta(self.step)


class PersonalColumn(BaseModel):
    """A column holding personal data: kept out of MLflow, Data Docs, artifacts and logs, and
    written to quarantine files only as a keyed hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: Literal["allowed", "forbidden"] = Field(
        "allowed", description="Whether the model may use the column as a feature"
    )


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    id_column: str
    generate_id: bool = Field(
        False, description="Import numbers the source rows (0-based, int64) into id_column"
    )
    time_column: str
    time_format: str | None = Field(
        None,
        description="strftime format of time_column in the source (default: ISO-8601, each value "
        "with its own precision and UTC offset; values without an offset are UTC)",
    )
    time_from_row_order: RowOrderTime | None = Field(
        None, description="Import computes time_column = start + row number * step"
    )
    label: LabelSpec
    features: dict[str, FeatureKind] = Field(min_length=1)
    drop: list[str] = Field(default_factory=list, description="Columns never used (e.g. leakage)")
    expected_drift: list[str] = Field(
        default_factory=list,
        description="Features that drift by construction (a month, a monthly index): their drift is "
        "reported but never a reason to retrain",
    )
    pii: dict[str, PersonalColumn] = Field(
        default_factory=dict,
        description="Columns holding personal data: `column: true`, or `column: {feature: forbidden}` "
        "for one the model may not use",
    )
    partition: PartitionUnit = Field(
        "day",
        description="How the lake partitions rows by event time: hour, day, week (ISO, from Monday) "
        "or month; every window, delay and cooldown counts these partitions",
    )

    @field_validator("time_format")
    @classmethod
    def _time_format_parses(cls, value: str | None) -> str | None:
        """A format pandas cannot use (an unknown directive such as %Q) fails here, not as a
        traceback in the middle of an import."""
        if value is not None:
            sample = datetime(2001, 2, 3, 4, 5, 6).strftime(value)
            try:
                pd.to_datetime(pd.Series([sample]), format=value, errors="coerce")
            except (ValueError, KeyError) as error:
                raise ValueError(
                    f"{value!r} is not a strftime format pandas can parse ({error}): "
                    "use directives such as %Y-%m-%d %H:%M:%S, or leave time_format out for ISO-8601"
                ) from None
        return value

    @field_validator("pii", mode="before")
    @classmethod
    def _pii_shorthand(cls, value: object) -> object:
        if isinstance(value, dict):
            return {column: {} if marked is True else marked for column, marked in value.items()}
        return value

    @model_validator(mode="after")
    def _personal_columns_are_known(self) -> "DatasetSpec":
        for column, personal in self.pii.items():
            if column in self.features and personal.feature == "forbidden":
                raise ValueError(
                    f"pii.{column} forbids '{column}' as a feature, but it is listed under features: "
                    f"remove it from features (and list it under drop if the source has it), or set "
                    f"pii.{column}.feature to allowed"
                )
            if column not in self.features and column not in self.drop:
                raise ValueError(
                    f"pii lists '{column}', which is neither a feature nor under drop (the id, time "
                    "and label columns cannot be personal): fix the column name"
                )
        return self

    @model_validator(mode="after")
    def _time_has_one_source(self) -> "DatasetSpec":
        if self.time_format is not None and self.time_from_row_order is not None:
            raise ValueError(
                "time_format parses time_column from the source, time_from_row_order computes it: "
                "give one of them"
            )
        return self

    @model_validator(mode="after")
    def _columns_are_distinct(self) -> "DatasetSpec":
        roles = {
            "id_column": self.id_column,
            "time_column": self.time_column,
            "label.column": self.label.column,
        }
        for field, column in roles.items():
            if column in self.features:
                raise ValueError(f"{field} {column!r} is also listed under features")
            if column in self.drop:
                raise ValueError(f"{field} {column!r} is also listed under drop")
        if overlap := sorted(set(self.drop) & set(self.features)):
            raise ValueError(f"drop lists feature columns {overlap}")
        if unknown := sorted(set(self.expected_drift) - set(self.features)):
            raise ValueError(f"expected_drift lists {unknown}, which are not features")
        return self

    @property
    def numeric_features(self) -> list[str]:
        return [name for name, kind in self.features.items() if kind == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        return [name for name, kind in self.features.items() if kind == "categorical"]

    @property
    def feature_columns(self) -> list[str]:
        return list(self.features)

    @property
    def personal_columns(self) -> list[str]:
        return list(self.pii)

    @property
    def profiled_features(self) -> dict[str, FeatureKind]:
        """Features the reference profile and drift cover: personal ones are never profiled."""
        return {name: kind for name, kind in self.features.items() if name not in self.pii}

    @property
    def inference_columns(self) -> list[str]:
        """Columns of a scoring partition: what production sends, without the label."""
        return [self.id_column, self.time_column, *self.features]

    @property
    def partitioning(self) -> Partitioning:
        return Partitioning(self.partition)

    def label_arrival(self, event_day: date) -> date:
        """The partition the labels of `event_day`'s partition arrive in."""
        return self.partitioning.shift(event_day, self.label.delay_days)


def load_dataset_spec(path: Path) -> DatasetSpec:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (FileNotFoundError, IsADirectoryError) as error:
        what = "is a directory" if isinstance(error, IsADirectoryError) else "does not exist"
        raise DatasetSpecError(
            f"Dataset spec {path} {what}: point --spec or INFERLOOP_DATASET_SPEC at a YAML file "
            "such as datasets/transactions.yaml"
        ) from error
    except yaml.YAMLError as error:
        raise DatasetSpecError(f"Dataset spec {path} is not valid YAML: {error}") from error
    try:
        return DatasetSpec.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in error.errors()
        )
        raise DatasetSpecError(f"Dataset spec {path} is invalid: {problems}") from error
