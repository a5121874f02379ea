"""API keys of the online endpoint: bearer tokens, stored only as SHA-256 hashes with scopes.

The keys file (`INFERLOOP_SERVE_KEYS_FILE`, mode 0600) holds, per key, its name, hash, scopes
and creation time; the key itself is printed once when it is created and never stored. A
presented key is hashed and compared with every stored hash in constant time
(`hmac.compare_digest`, no early exit), so timing says nothing about which keys exist. The file
is re-read when it changes, looked at once a second at most (`RECHECK_SECONDS`; a stat per
request was 3 % of a single-row request's server time): a key added with `inferloop serve keys
add` works, and a removed one stops working, within a second, without a restart.
"""

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from inferloop.core.errors import InferloopError

SCOPES = ("score", "admin")
RECHECK_SECONDS = 1.0
KEY_PREFIX = "il_"


class KeysFileError(InferloopError, ValueError):
    """The keys file is unreadable, or a key cannot be added; the message says what to do."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    scopes: tuple[str, ...]
    created: str = ""


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def read_keys(path: Path) -> list[ApiKey]:
    """The keys in `path` (none when the file does not exist)."""
    try:
        raw = json.loads(path.read_text())
        return [ApiKey(k["name"], k["sha256"], tuple(k["scopes"]), k.get("created", "")) for k in raw["keys"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise KeysFileError(
            f"The keys file {path} is unreadable ({type(error).__name__}): fix or remove it "
            "(INFERLOOP_SERVE_KEYS_FILE), then add keys with `inferloop serve keys add NAME`"
        ) from error


def first_key(path: Path, name: str = "first") -> str | None:
    """A key with every scope when `path` holds none (`inferloop up` shows it, once), else None."""
    if read_keys(path):
        return None
    return add_key(path, name, list(SCOPES))


def _write_keys(path: Path, keys: list[ApiKey]) -> None:
    """The whole file, replaced atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "keys": [
            {"name": k.name, "sha256": k.sha256, "scopes": list(k.scopes), "created": k.created} for k in keys
        ]
    }
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(payload, out, indent=2)
    os.replace(temp, path)


def add_key(path: Path, name: str, scopes: list[str]) -> str:
    """Create a key named `name` with `scopes`, store its hash, and return the key (the only
    time it is ever available)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise KeysFileError(
            f"Unknown scope(s) {unknown or scopes}: use --scope {' or --scope '.join(SCOPES)}"
        )
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise KeysFileError(f"Key name {name!r}: use letters, digits, - and _")
    keys = read_keys(path)
    if any(k.name == name for k in keys):
        raise KeysFileError(f"A key named {name!r} exists in {path}: choose another name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    _write_keys(path, [*keys, ApiKey(name, key_hash(key), tuple(dict.fromkeys(scopes)), created)])
    return key


class KeyStore:
    """The keys of a keys file, re-read when the file changes."""

    def __init__(self, path: Path, recheck_seconds: float = RECHECK_SECONDS):
        self.path = path
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: list[ApiKey] = []
        self._checked_at = -float("inf")

    def _current(self) -> list[ApiKey]:
        now = time.monotonic()
        with self._lock:
            if now - self._checked_at < self.recheck_seconds:
                return self._keys
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._keys = read_keys(self.path) if stamp else []  # unreadable: raises, checked next time
                self._stamp = stamp
            self._checked_at = now
            return self._keys

    def find(self, presented: str) -> ApiKey | None:
        """The stored key `presented` is, or None. Every stored hash is compared, in constant time."""
        digest = key_hash(presented).encode()
        found = None
        for key in self._current():
            if hmac.compare_digest(digest, key.sha256.encode()):
                found = key
        return found
