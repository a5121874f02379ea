"""The replay flow: each day as if live (score with the champion of the moment, monitor, retrain
when the policy says so); returns one row per day and the loop's prequential metrics beside those
of the first champion kept forever, and the loop compared with periodic retraining on the same
rows; saves the day-by-day table and the comparison.
(tests/e2e/test_monitoring.py replays whole scenarios, with retrains.)"""

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from inferloop.cli.commands import app
from inferloop.core import catalog
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.replay import replay
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.monitoring.replay import loop_predictions, version_scores_of
from tests.flows.conftest import DAYS, ROWS_PER_DAY, register, write_feed


def test_replay_returns_a_row_per_day_and_prequential_metrics(pool, lake, feed, monkeypatch):
    monkeypatch.setenv("INFERLOOP_BASELINE_EVERY", "[1, 2]")
    champion = register(lake, pool.before, "champion")
    start, end = DAYS[5], DAYS[7]
    summary = replay(start=start, end=end)

    assert [(d.day, d.champion_version, d.refused) for d in summary.days] == [
        (DAYS[5].isoformat(), champion, False),
        (DAYS[6].isoformat(), champion, False),
        (DAYS[7].isoformat(), champion, False),
    ]
    first, second, _ = summary.days
    assert all(d.rows_scored + d.rows_quarantined == ROWS_PER_DAY for d in summary.days)
    # Labels come a day late: the first day's own predictions are measured on the second.
    assert (first.labelled_rows, first.roc_auc) == (0, None)
    assert second.labelled_rows == first.rows_scored and second.roc_auc is not None
    assert (summary.retrains, summary.promotions) == (0, 0)
    # Prequential: every scored row whose label has arrived, once; the champion never changed,
    # so the static baseline (scored on exactly those rows) measures the same.
    scored = sum(d.rows_scored for d in summary.days)
    assert summary.loop["rows"] == scored
    assert summary.static == pytest.approx(summary.loop)

    settings = load_settings()
    storage = lake_storage(settings.lake)
    table = catalog.replay_table(settings.dataset.name, start, end)
    assert summary.table_uri == storage.uri(table)
    saved = storage.read_table(table).to_pandas()
    assert saved["day"].tolist() == [d.day for d in summary.days]
    assert saved["rows_scored"].tolist() == [d.rows_scored for d in summary.days]

    # The loop against its baselines, all on the loop's labelled rows: a cron retraining every
    # partition (day indices 1 and 2) and every 2 partitions (index 2).
    comparison = summary.comparison
    assert [(p.policy, p.rows, p.retrains, p.promotions) for p in comparison.policies] == [
        ("inferloop loop", scored, 0, 0),
        ("first model kept", scored, 0, 0),
        ("retrain every 2 partitions", scored, 1, 1),
        ("retrain every partition", scored, 2, 2),
    ]
    assert comparison.policy("first model kept").metrics == pytest.approx(
        {k: v for k, v in summary.loop.items() if k != "rows"}
    )
    assert comparison.verdict.startswith(f"The loop: {settings.monitoring.monitor_metric} ")
    dataset = settings.dataset.name
    table = storage.read_table(catalog.replay_comparison(dataset, start, end)).to_pandas()
    assert table["retrains"].tolist() == [0, 0, 1, 2]
    document = storage.read_json(catalog.replay_comparison_json(dataset, start, end))
    assert document["verdict"] == comparison.verdict and len(document["over_time"]) == 3 * 4
    assert storage.read_bytes(catalog.replay_comparison_chart(dataset, start, end)).startswith(b"\x89PNG")
    assert comparison.policy("inferloop loop").rejections == "none judged"  # it rejected no challenger

    # How a rejected challenger is judged: a version's scores of the loop's rows, in their order
    # (here the champion's, which scored them all).
    loop = loop_predictions(storage, settings.dataset, settings.registry.model_name, summary.days)
    shuffled = loop.sample(frac=1, random_state=0)
    scores, threshold = version_scores_of(storage, settings, champion, shuffled)
    assert scores == pytest.approx(shuffled["score"].to_numpy(float))
    assert threshold == settings.scoring.decision_threshold


# The producer renamed `amount` on days 1 and 2: the gate refuses both.
RENAMED_COLUMN = GeneratorConfig(
    scenario="quality_faults", days=3, rows_per_day=ROWS_PER_DAY, renamed_column_days=(1, 2)
)


def test_a_replay_of_refused_partitions_saves_an_empty_comparison_and_writes_the_json(pool, lake, tmp_path):
    """Through the CLI: every partition refused (the producer renamed a column) scores nothing;
    the replay still finishes, saves its tables and says there is nothing to compare."""
    days = write_feed(
        GeneratorConfig(
            scenario="quality_faults", days=3, rows_per_day=ROWS_PER_DAY, renamed_column_days=(1, 2)
        )
    )
    register(lake, pool.before, "champion")
    output = tmp_path / "comparison.json"
    result = CliRunner().invoke(
        app, ["replay", "--from", str(days[1]), "--to", str(days[2]), "--json", str(output)]
    )

    assert result.exit_code == 0, result.output
    comparison = json.loads(output.read_text())
    assert (comparison["policies"], comparison["over_time"]) == ([], [])
    assert comparison["verdict"].startswith(f"No partition of {days[1]}..{days[2]} was scored")
    assert "2 of 2 refused" in comparison["verdict"]
    assert "No partition of" in " ".join(result.output.split()) and f"written to {output}" in result.output
    settings = load_settings()
    storage = lake_storage(settings.lake)
    assert len(storage.read_table(catalog.replay_comparison(settings.dataset.name, days[1], days[2]))) == 0
    assert storage.read_table(catalog.replay_table(settings.dataset.name, days[1], days[2])).num_rows == 2


def test_a_replay_whose_candidates_all_fail_the_gates_stops_with_their_reasons(lake, feed, monkeypatch):
    """No champion: replay trains the first one on the window before --from and says which; when
    no candidate clears the absolute floor by the end, it stops with the recorded reasons, not a
    missing alias."""
    from inferloop.flows.replay import FirstChampionRejected

    monkeypatch.setenv("INFERLOOP_MIN_ROC_AUC", "0.999")
    monkeypatch.setenv("INFERLOOP_TRAIN_WINDOW_DAYS", "3")
    first_end = DAYS[5] - timedelta(days=2)  # labels one day late, known the day before
    with pytest.raises(FirstChampionRejected) as refused:
        replay(start=DAYS[5], end=DAYS[6])
    message = str(refused.value)
    assert f"trained on {first_end - timedelta(days=2)}..{first_end}" in message
    assert f"No model cleared the gates by {DAYS[6]}" in message
    assert "min_roc_auc: ROC AUC" in message and "vs minimum 0.9990" in message
    assert message.endswith("lower INFERLOOP_MIN_ROC_AUC if a weak model is still worth serving")


def test_a_first_champion_that_no_wait_can_train_stops_the_replay_at_once(lake, feed, monkeypatch, tmp_path):
    """A suite not committed fails every attempt alike: the replay stops at the first, with the
    gate's own message, instead of trying again every cooldown to the end."""
    import shutil

    from inferloop.tasks.gate.expectations import SuiteMissingError

    project = tmp_path / "expectations"
    shutil.copytree(load_settings().gate.expectations_dir, project)
    name = load_settings().dataset.name
    (project / "gx" / "checkpoints" / f"{name}_training.json").unlink()
    monkeypatch.setenv("INFERLOOP_EXPECTATIONS_DIR", str(project))
    monkeypatch.setenv("INFERLOOP_TRAIN_WINDOW_DAYS", "3")
    with pytest.raises(SuiteMissingError, match=f"No GX checkpoint '{name}_training'"):
        replay(start=DAYS[5], end=DAYS[7])


def test_a_long_wait_for_a_first_champion_names_its_first_and_latest_attempts_and_what_to_do():
    from inferloop.flows.replay import advice, attempts

    missed = [f"v{v} trained on ...: min_roc_auc: ROC AUC 0.51 vs minimum 0.6000" for v in range(1, 8)]
    assert attempts(missed).split(" | ") == [missed[0], "3 more", *missed[4:]]
    assert attempts(missed[:4]).split(" | ") == missed[:4]
    assert "lower INFERLOOP_MIN_ROC_AUC" in advice(missed)
    too_few = (
        "2013-02-01..2013-07-01: The window holds 119 labelled rows, fewer than INFERLOOP_MIN_TRAIN_ROWS=200"
    )
    assert advice([*missed, too_few]).startswith("start the replay later")


def test_the_first_champion_waits_for_enough_labelled_days_and_the_replay_scores_from_then_on(
    lake, feed, monkeypatch
):
    """The window before --from holds no labelled day yet: the replay trains again as labels
    arrive (every cooldown) and scores from the first day a champion exists."""
    monkeypatch.setenv("INFERLOOP_TRAIN_WINDOW_DAYS", "3")
    monkeypatch.setenv("INFERLOOP_RETRAIN_COOLDOWN_DAYS", "2")
    summary = replay(start=DAYS[1], end=DAYS[7])
    scored_from = summary.days[0].day
    assert DAYS[1].isoformat() < scored_from <= DAYS[7].isoformat()
    assert [d.day for d in summary.days][-1] == DAYS[7].isoformat()


def test_a_period_with_no_partition_is_a_gap_the_replay_steps_over(pool, lake, feed):
    """A feed that has no rows for a day (a weekend, a quiet hour) replays the days it has."""
    import shutil

    register(lake, pool.before, "champion")
    settings = load_settings()
    shutil.rmtree(lake_storage(settings.lake).path(catalog.features(settings.dataset.name, DAYS[6])))
    summary = replay(start=DAYS[5], end=DAYS[7])
    assert [d.day for d in summary.days] == [DAYS[5].isoformat(), DAYS[7].isoformat()]
    assert all(d.rows_scored + d.rows_quarantined == ROWS_PER_DAY for d in summary.days)


def test_a_replay_of_days_the_lake_does_not_hold_says_so_before_any_training(lake, feed):
    """It used to fail with an IndexError traceback once the (empty) loop was compared."""
    from inferloop.tasks.data.feeds import MissingDataError

    far = DAYS[-1] + timedelta(days=400)
    with pytest.raises(MissingDataError, match=f"No transactions partition from {far} to {far}"):
        replay(start=far, end=far)
