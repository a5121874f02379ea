"""Personal values as keyed hashes, for the files that keep whole rows (the quarantines).

A keyed hash (HMAC-SHA256) lets a person match a quarantined row with its source (hash the
value they have with the same key) without the file holding the value; without the key, a
hash cannot be tested against guesses (an unkeyed hash of a name or an e-mail address can).
The key is `INFERLOOP_PERSONAL_DATA_KEY` when set (production: a secret shared by every process
that writes quarantine), else a random key generated once into `personal_data_key_file`
(mode 0600, in the state dir, never in the lake or in MLflow) and reused.
"""

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from inferloop.core.dataset import DatasetSpec
from inferloop.core.errors import InferloopError
from inferloop.core.settings import GateSettings

HASH_PREFIX = "hmac-sha256:"


def personal_data_key(gate: GateSettings) -> bytes:
    """The configured key, else the one kept in the key file (generated there the first time)."""
    if gate.personal_data_key is not None:
        return gate.personal_data_key.get_secret_value().encode()
    path: Path = gate.personal_data_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: of two processes generating at once, one writes and both read its key
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if not key:
        raise InferloopError(
            f"The personal-data key file {path} is empty: restore it from a backup (quarantined "
            "hashes match only their own key), or delete it to have a new key generated"
        )
    return key.encode()


@dataclass(frozen=True)
class Pseudonymiser:
    """Replaces the values of a spec's personal columns by their keyed hash."""

    columns: frozenset[str]
    key: bytes = field(repr=False)

    @classmethod
    def for_spec(cls, spec: DatasetSpec, gate: GateSettings) -> "Pseudonymiser":
        """For the spec's pii columns; no key is read or generated for a spec without any."""
        columns = frozenset(spec.personal_columns)
        return cls(columns, personal_data_key(gate) if columns else b"")

    def value(self, value: object) -> str | None:
        """`hmac-sha256:<hex>` of the value's text (missing stays missing)."""
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        return HASH_PREFIX + hmac.new(self.key, str(value).encode(), hashlib.sha256).hexdigest()

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` with each personal column's values replaced by their keyed hashes."""
        personal = [column for column in frame.columns if column in self.columns]
        if not personal:
            return frame
        return frame.assign(**{column: frame[column].astype(object).map(self.value) for column in personal})


NO_PERSONAL_COLUMNS = Pseudonymiser(frozenset(), b"")
