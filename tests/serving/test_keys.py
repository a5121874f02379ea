"""API keys: created once, printed once, stored only as hashes with scopes; found in constant
time; the CLI's errors are one line."""

import hashlib
import json
import stat

import pytest
from typer.testing import CliRunner

from inferloop.cli.commands import app
from inferloop.serving.keys import KeysFileError, KeyStore, add_key, first_key, read_keys


def test_a_key_is_stored_as_its_hash_with_its_scopes(tmp_path):
    path = tmp_path / "keys.json"
    key = add_key(path, "reporting-app", ["score"])
    stored = path.read_text()
    assert key not in stored
    assert hashlib.sha256(key.encode()).hexdigest() in stored
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [entry] = read_keys(path)
    assert (entry.name, entry.scopes) == ("reporting-app", ("score",))


def test_inferloop_up_gets_a_first_key_with_every_scope_only_while_there_is_none(tmp_path):
    path = tmp_path / "serving" / "keys.json"
    key = first_key(path)
    assert KeyStore(path).find(key).scopes == ("score", "admin")
    assert first_key(path) is None  # shown once: the next `up` makes none
    assert [k.name for k in read_keys(path)] == ["first"]


def test_the_store_finds_a_key_by_its_value_and_sees_keys_added_later(tmp_path):
    path = tmp_path / "keys.json"
    store = KeyStore(path, recheck_seconds=0)
    assert store.find("il_anything") is None  # no file yet: no key is valid
    first = add_key(path, "a", ["score"])
    assert store.find(first).name == "a"
    second = add_key(path, "b", ["score", "admin"])  # no restart: the file is re-read
    assert store.find(second).scopes == ("score", "admin")
    assert store.find(first + "x") is None and store.find("") is None


def test_the_file_is_looked_at_once_per_interval_at_most(tmp_path):
    path = tmp_path / "keys.json"
    store = KeyStore(path, recheck_seconds=3600)
    assert store.find("il_anything") is None  # looked at: no file
    added = add_key(path, "late", ["score"])
    assert store.find(added) is None  # within the interval: not looked at again
    assert KeyStore(path).find(added).name == "late"


def test_a_running_store_sees_a_change_once_its_interval_has_passed(tmp_path, monkeypatch):
    import inferloop.serving.keys as keys

    now = [1000.0]
    monkeypatch.setattr(keys.time, "monotonic", lambda: now[0])
    path = tmp_path / "keys.json"
    store = KeyStore(path)  # the default interval, which the README promises: within a second
    assert store.recheck_seconds == 1.0 and store.find("il_anything") is None
    added = add_key(path, "late", ["score"])
    now[0] += 0.5
    assert store.find(added) is None
    now[0] += 0.6
    assert store.find(added).name == "late"


@pytest.mark.parametrize(
    ("name", "scopes", "message"),
    [("a", ["root"], "Unknown scope"), ("a b", ["score"], "letters, digits"), ("dup", ["score"], "exists")],
)
def test_bad_keys_are_refused_with_what_to_do(tmp_path, name, scopes, message):
    path = tmp_path / "keys.json"
    add_key(path, "dup", ["score"])
    with pytest.raises(KeysFileError, match=message):
        add_key(path, name, scopes)


def test_an_unreadable_keys_file_says_how_to_fix_it(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    with pytest.raises(KeysFileError, match="fix or remove it"):
        read_keys(path)


def test_the_cli_prints_the_key_once_and_stores_its_hash(tmp_path, monkeypatch):
    path = tmp_path / "keys.json"
    monkeypatch.setenv("INFERLOOP_SERVE_KEYS_FILE", str(path))
    result = CliRunner().invoke(app, ["serve", "keys", "add", "ops", "--scope", "admin", "--scope", "score"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("il_") and result.output.count(key) == 1
    assert KeyStore(path).find(key).scopes == ("admin", "score")
    assert key not in path.read_text()
    assert json.loads(path.read_text())["keys"][0]["name"] == "ops"


def test_the_cli_refuses_an_unknown_scope_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERLOOP_SERVE_KEYS_FILE", str(tmp_path / "keys.json"))
    result = CliRunner().invoke(app, ["serve", "keys", "add", "ops", "--scope", "everything"])
    assert result.exit_code == 1
    assert "Unknown scope" in result.output and "Traceback" not in result.output
