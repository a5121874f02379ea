"""The stack as `inferloop up` starts it: a worker runs the deployments of prefect.yaml on the
stack's own lake and registry, the degraded event starts the retrain deployment through its
automation, and `inferloop down` stops it (the `stack` fixture checks that at the end).

What a person sees in the browser: the Prefect UI lists every deployment of prefect.yaml with its
schedule, its Run button starts a flow run that the worker completes, and the MLflow UI shows that
run's model as @champion. The scoring deployment lists its next scheduled runs, and a rerun of a
scored day says it is a no-op. After a monitored day: the drift table among the Prefect artifacts, the
automation behind the retrain trigger and the retrain run it started, and in MLflow the monitoring
metrics and the champion's promotion decision. Headless Debian Chromium (`make browser` installs
it), driven by Playwright; a screenshot of each page (and of the last page of a failed test) goes
to test-artifacts/ui/."""

import json
import re
import time
import urllib.error
from datetime import date
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from playwright.sync_api import expect, sync_playwright
from prefect.utilities.templating import apply_values

from inferloop.core.periods import Partitioning
from inferloop.stack.control import deployment_crons
from tests.e2e.conftest import api, emit_degraded, wait_for_deployment_run, wait_for_run

pytestmark = pytest.mark.slow
expect.set_options(timeout=30_000)  # assertions wait as long as a loaded machine needs (default 5 s)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "ui"
MODEL_NAME = "transactions-classifier"
# The Prefect UI shows a cron schedule in words, never the cron string itself.
SCHEDULE_AS_RENDERED = {
    "30 2 * * *": "At 02:30 AM every day",
    "30 3 * * *": "At 03:30 AM every day",
    "30 4 * * *": "At 04:30 AM every day",
}
DEPLOYMENT_LINK = 'a[href^="/deployments/deployment/"]'
# The stack's 9 generated days end on 2026-01-09: the monitor measures that day's drift (500 rows,
# above min_drift_rows) and the champion's ROC AUC on the day before (labels arrive a day late).
SCORED_DAYS = ("2026-01-08", "2026-01-09")
MONITORED_DAY = "2026-01-09"
MONITORING_EXPERIMENT = "inferloop-monitoring"
DEGRADED_EVENT = "inferloop.model.degraded"


class MonitoredDay(NamedTuple):
    champion_version: str
    monitor_run: dict


def declared_deployments() -> dict[str, dict]:
    prefect_yaml = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    return {deployment["name"]: deployment for deployment in prefect_yaml["deployments"]}


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")
    return path


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(
            "Chromium not found at /usr/bin/chromium: make test installs Debian's chromium package; "
            "install it with apt-get install chromium chromium-driver"
        )
    # The system browser: Playwright's own browser downloads are never used.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    # UTC, like the schedules in prefect.yaml, so the times on screen are the ones the YAML states.
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id="UTC")
    # Generous: on a shared 2-core machine running other test files beside this one, a UI page
    # can take many seconds to render; a test fails on what is shown, not on how fast.
    context.set_default_timeout(60_000)
    page = context.new_page()
    failures_before = request.session.testsfailed
    yield page
    if request.session.testsfailed > failures_before:
        screenshot(page, f"FAILED-{request.node.name}")
    context.close()


def deployment_link(page, name: str):
    return page.locator(DEPLOYMENT_LINK).get_by_text(name, exact=True)


def test_deployments_page_lists_prefect_yaml_with_schedules(browser, stack, page, monkeypatch):
    ports, _, _ = stack
    declared = declared_deployments()
    page.goto(f"http://127.0.0.1:{ports['PREFECT']}/deployments")

    # One page of the list (10 rows by default) holds them all, and nothing else is registered.
    expect(page.get_by_text(f"{len(declared)} Deployments", exact=True)).to_be_visible()
    for name in declared:
        expect(deployment_link(page, name)).to_be_visible()
    # The stack's feed is daily: `inferloop deploy` set the templated crons for that.
    for name, cron in deployment_crons(Partitioning("day")).items():
        monkeypatch.setenv(name, cron)
    declared = apply_values(declared, {})
    assert declared["batch-inference-daily"]["schedules"][0]["cron"] == "30 2 * * *"
    for name, deployment in declared.items():
        row = page.get_by_role("row").filter(has=deployment_link(page, name))
        for schedule in deployment.get("schedules", []):
            expect(row).to_contain_text(SCHEDULE_AS_RENDERED[schedule["cron"]])
    screenshot(page, "prefect-deployments")


def test_quick_run_of_train_from_ui_completes_and_registers_champion(browser, stack, page):
    ports, _, _ = stack
    prefect = f"http://127.0.0.1:{ports['PREFECT']}"
    mlflow = f"http://127.0.0.1:{ports['MLFLOW']}"

    page.goto(f"{prefect}/deployments")
    deployment_link(page, "train").click()
    expect(page.get_by_text("inferloop.flows.train:train", exact=True)).to_be_visible()
    # train's parameters all have defaults (the latest labelled window), so Quick run needs none.
    # On SQLite the server answers 503 while another writer holds the database (Prefect's clients
    # retry it; the UI shows an error toast): click again, as a person would.
    for _attempt in range(3):
        page.get_by_role("button", name="Run", exact=True).click()
        with page.expect_response(
            lambda response: response.url.endswith("/create_flow_run") and response.request.method == "POST"
        ) as created:
            page.get_by_role("button", name="Quick run").click()
        if created.value.status != 503:
            break
        page.wait_for_timeout(2_000)
    assert created.value.ok, created.value.text()
    run = created.value.json()
    expect(page.get_by_text(f"{run['name']} scheduled to start now").first).to_be_visible()
    screenshot(page, "prefect-train-quick-run")

    finished = wait_for_run(prefect, run["id"])
    assert finished["state"]["type"] == "COMPLETED", finished["state"]
    train_deployment = api(f"{prefect}/api/deployments/name/train/train")
    assert finished["deployment_id"] == train_deployment["id"]
    page.goto(f"{prefect}/runs/flow-run/{run['id']}")
    expect(page.get_by_text("Completed", exact=True).first).to_be_visible()
    # The run graph is a canvas drawn after its data arrives: let it paint before the screenshot.
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1_000)
    screenshot(page, "prefect-train-run-completed")

    champion = api(f"{mlflow}/api/2.0/mlflow/registered-models/alias?name={MODEL_NAME}&alias=champion")
    page.goto(f"{mlflow}/#/models/{MODEL_NAME}")
    champion_row = page.get_by_role("row").filter(has_text=re.compile(r"@\s*champion"))
    expect(champion_row).to_have_count(1)
    version = champion["model_version"]["version"]
    expect(champion_row.get_by_role("link", name=f"Version {version}", exact=True)).to_be_visible()
    screenshot(page, "mlflow-registered-model")


def champion_version(mlflow: str) -> str | None:
    try:
        found = api(f"{mlflow}/api/2.0/mlflow/registered-models/alias?name={MODEL_NAME}&alias=champion")
    except urllib.error.HTTPError as error:
        if error.code not in (400, 404):  # 404: no such model yet; 400: no such alias
            raise
        return None
    return found["model_version"]["version"]


def run_deployment(prefect: str, name: str, parameters: dict) -> dict:
    """A run of deployment `name`, started through the API as the UI's Run button does; completed."""
    (deployment,) = api(f"{prefect}/api/deployments/filter", {"deployments": {"name": {"any_": [name]}}})
    run = api(f"{prefect}/api/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters})
    finished = wait_for_run(prefect, run["id"])
    assert finished["state"]["type"] == "COMPLETED", (name, finished["state"])
    return finished


def wait_for_log(prefect: str, run_id: str, text: str, timeout: float = 30) -> str:
    """The first log line of flow run `run_id` containing `text`, once the server has it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = api(f"{prefect}/api/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}})
        if found := [log["message"] for log in logs if text in log["message"]]:
            return found[0]
        time.sleep(1)
    raise AssertionError(f"no log line of run {run_id} contains {text!r} after {timeout} s")


@pytest.fixture(scope="module")
def monitored_day(stack) -> MonitoredDay:
    """MONITORED_DAY scored by @champion (with the day before, whose labels give the monitor a
    rolling ROC AUC) and monitored by a run of the monitor-daily deployment; then the degraded
    event raised by hand, as the monitor raises it on a confirmed breach, so the automation's
    retrain run goes on while the pages are looked at. Trains a champion first only when the
    Quick run test above has not (this test run alone)."""
    ports, _, _ = stack
    prefect = f"http://127.0.0.1:{ports['PREFECT']}"
    mlflow = f"http://127.0.0.1:{ports['MLFLOW']}"
    if champion_version(mlflow) is None:
        run_deployment(prefect, "train", {})
    version = champion_version(mlflow)
    assert version is not None, "train registered no @champion"
    run_deployment(
        prefect, "batch-inference-daily", {"partition_date": SCORED_DAYS[0], "end_date": SCORED_DAYS[-1]}
    )
    monitor_run = run_deployment(prefect, "monitor-daily", {"day": MONITORED_DAY})
    emit_degraded(prefect, MODEL_NAME, MONITORED_DAY)
    return MonitoredDay(version, monitor_run)


def test_runs_score_the_stacks_lake_and_the_degraded_event_starts_retrain(stack, monitored_day):
    """Without a browser too: what the runs of the monitored_day fixture left on the stack."""
    ports, _, state_dir = stack
    prefect = f"http://127.0.0.1:{ports['PREFECT']}"
    predictions = state_dir / "lake" / "predictions"
    for day in SCORED_DAYS:
        scored = f"model={MODEL_NAME}/version={monitored_day.champion_version}/date={day}/_manifest.json"
        assert (predictions / scored).exists(), scored
    (retrain,) = api(f"{prefect}/api/deployments/filter", {"deployments": {"name": {"any_": ["retrain"]}}})
    finished = wait_for_run(prefect, wait_for_deployment_run(prefect, retrain["id"])["id"])
    assert finished["state"]["type"] == "COMPLETED", finished["state"]
    assert finished["parameters"] == {"day": MONITORED_DAY}


def test_status_shows_the_endpoint_up_and_the_version_it_serves(stack, monitored_day):
    from inferloop.stack.control import served_version

    ports, cli, _ = stack
    endpoint = f"http://127.0.0.1:{ports['SERVE']}"
    # It follows @champion (polling every 10 s by default); a retrain may have moved it since.
    deadline = time.monotonic() + 90
    while not (serving := served_version(endpoint, timeout=30)).startswith(f"serving {MODEL_NAME} v"):
        assert time.monotonic() < deadline, serving
        time.sleep(2)
    status = cli("status")
    assert status.returncode == 0, status.stderr
    assert "serve" in status.stdout and "serving" in status.stdout, status.stdout


def test_monitor_run_publishes_drift_table_in_prefect_artifacts(browser, stack, monitored_day, page):
    ports, _, _ = stack
    prefect = f"http://127.0.0.1:{ports['PREFECT']}"
    key = "monitoring-transactions-drift"
    (artifact,) = api(
        f"{prefect}/api/artifacts/filter",
        {"artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [monitored_day.monitor_run["id"]]}}},
    )
    drift = {row["feature"]: row for row in json.loads(artifact["data"])}  # a table's rows, as JSON
    assert "amount" in drift and artifact["type"] == "table"

    page.goto(f"{prefect}/artifacts")
    page.get_by_text(key, exact=True).click()
    expect(page).to_have_url(re.compile(f"/artifacts/key/{key}$"))
    # The key's page lists its versions, newest first, by the first 8 characters of their id.
    page.get_by_role("link", name=artifact["id"][:8], exact=True).click()
    expect(
        page.get_by_text(f"Drift of {MONITORED_DAY} vs {MODEL_NAME} v{monitored_day.champion_version}")
    ).to_be_visible()
    for header in ("feature", "psi", "ks", "flagged"):
        expect(page.get_by_role("columnheader", name=header, exact=True)).to_be_visible()
    # One row per monitored feature, each with the PSI the run measured; DRIFT marks exactly the
    # features the monitor flagged (none on this stable feed, but the count must agree).
    expect(page.get_by_role("row")).to_have_count(1 + len(drift))
    for feature in ("amount", "merchant_category"):
        row = page.get_by_role("row").filter(has=page.get_by_text(feature, exact=True))
        expect(row).to_contain_text(str(drift[feature]["psi"]))
    flagged = [feature for feature, row in drift.items() if row["flagged"]]
    expect(page.get_by_text("DRIFT", exact=True)).to_have_count(len(flagged))
    screenshot(page, "prefect-monitoring-drift-artifact")


def test_mlflow_shows_monitoring_metrics_and_champion_decision(browser, stack, monitored_day, page):
    ports, _, _ = stack
    mlflow = f"http://127.0.0.1:{ports['MLFLOW']}"
    version = monitored_day.champion_version
    experiment = api(
        f"{mlflow}/api/2.0/mlflow/experiments/get-by-name?experiment_name={MONITORING_EXPERIMENT}"
    )
    experiment_id = experiment["experiment"]["experiment_id"]
    (run,) = api(
        f"{mlflow}/api/2.0/mlflow/runs/search",
        {
            "experiment_ids": [experiment_id],
            "filter": f"tags.`inferloop.model` = '{MODEL_NAME}' "
            f"and tags.`inferloop.model_version` = '{version}'",
        },
    )["runs"]
    history = api(
        f"{mlflow}/api/2.0/mlflow/metrics/get-history?run_id={run['info']['run_id']}&metric_key=rolling_roc_auc"
    )["metrics"]
    # Over time: one point per monitored day, at step = the day's ordinal.
    assert date.fromisoformat(MONITORED_DAY).toordinal() in {point["step"] for point in history}

    page.goto(f"{mlflow}/#/experiments/{experiment_id}/runs")
    run_name = f"monitor {MODEL_NAME} v{version}"
    page.get_by_role("link", name=run_name, exact=True).click()
    expect(page.get_by_role("heading", name=run_name)).to_be_visible()
    for metric in ("psi_amount", "prediction_psi", "rolling_roc_auc"):
        expect(page.get_by_text(metric, exact=True)).to_be_visible()
    page.get_by_role("tab", name="Model metrics").click()
    page.get_by_placeholder("Search metric charts").fill("rolling_roc_auc")
    # The chart's title, then its x axis (days as steps), drawn once the metric history has loaded.
    expect(page.get_by_text("rolling_roc_auc", exact=True)).to_be_visible()
    expect(page.get_by_text("Step", exact=True)).to_be_visible()
    screenshot(page, "mlflow-monitoring-metrics")

    # The champion's promotion decision, tagged on its model version.
    page.goto(f"{mlflow}/#/models/{MODEL_NAME}/versions/{version}")
    verdict = page.get_by_role("row").filter(has=page.get_by_text("inferloop.decision.verdict", exact=True))
    expect(verdict).to_contain_text("promote")
    expect(page.get_by_text("inferloop.decision.reason", exact=True)).to_be_visible()
    verdict.scroll_into_view_if_needed()  # the tags table scrolls inside the page
    screenshot(page, "mlflow-champion-decision")


def test_retrain_automation_and_the_run_it_started(browser, stack, monitored_day, page):
    ports, _, _ = stack
    prefect = f"http://127.0.0.1:{ports['PREFECT']}"
    (retrain,) = api(f"{prefect}/api/deployments/filter", {"deployments": {"name": {"any_": ["retrain"]}}})
    automations = [
        automation
        for automation in api(f"{prefect}/api/automations/filter", {})
        if any(action.get("deployment_id") == retrain["id"] for action in automation["actions"])
    ]
    assert len(automations) == 1, automations
    automation = automations[0]
    assert automation["trigger"]["expect"] == [DEGRADED_EVENT] and automation["enabled"]

    page.goto(f"{prefect}/automations")
    page.get_by_role("link", name=automation["name"], exact=True).click()
    expect(page).to_have_url(re.compile(f"/automations/automation/{automation['id']}$"))
    expect(page.get_by_text("Run deployment:")).to_be_visible()
    expect(page.get_by_role("link", name="retrain", exact=True)).to_be_visible()
    screenshot(page, "prefect-retrain-automation")

    # The run the automation started on the degraded event the fixture raised (the test above
    # checks that it completes, with the event's day).
    finished = wait_for_run(prefect, wait_for_deployment_run(prefect, retrain["id"])["id"])
    assert finished["created_by"]["type"] == "AUTOMATION"
    assert finished["created_by"]["id"] == automation["id"]
    page.goto(f"{prefect}/runs")
    listed = page.get_by_role("link", name=finished["name"], exact=True)
    expect(listed).to_be_visible()
    screenshot(page, "prefect-runs-list")
    listed.click()
    expect(page).to_have_url(re.compile(f"/runs/flow-run/{finished['id']}$"))
    expect(page.get_by_text("Completed", exact=True).first).to_be_visible()
    expect(page.get_by_text(automation["name"], exact=True)).to_be_visible()
    screenshot(page, "prefect-retrain-run")


def test_scheduled_scoring_shows_next_runs_and_a_rerun_says_it_is_a_no_op(
    browser, stack, monitored_day, page
):
    ports, _, _ = stack
    prefect = f"http://127.0.0.1:{ports['PREFECT']}"
    (deployment,) = api(
        f"{prefect}/api/deployments/filter", {"deployments": {"name": {"any_": ["batch-inference-daily"]}}}
    )
    # The server schedules the cron's next runs itself: the Upcoming tab lists them.
    upcoming = api(
        f"{prefect}/api/flow_runs/filter",
        {
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            "deployments": {"id": {"any_": [deployment["id"]]}},
            "sort": "EXPECTED_START_TIME_ASC",
        },
    )
    assert upcoming and all(run["expected_start_time"][11:16] == "02:30" for run in upcoming)
    page.goto(f"{prefect}/deployments/deployment/{deployment['id']}?tab=Upcoming")
    expect(page.get_by_text(upcoming[0]["name"], exact=True)).to_be_visible()
    screenshot(page, "prefect-scoring-upcoming-runs")

    # The monitored_day fixture scored SCORED_DAYS with this deployment; run the first day again.
    rerun = run_deployment(prefect, "batch-inference-daily", {"partition_date": SCORED_DAYS[0]})
    # A run's last log lines can reach the server just after its final state: wait for them.
    no_op_line = wait_for_log(prefect, rerun["id"], "already scored, nothing rewritten")
    page.goto(f"{prefect}/runs/flow-run/{rerun['id']}")
    expect(page.get_by_text(no_op_line)).to_be_visible()  # the run's logs
    screenshot(page, "prefect-scoring-rerun-no-op-logs")
    page.get_by_text("Artifacts", exact=True).click()
    expect(page.get_by_text("scoring-progress-transactions", exact=True)).to_be_visible()
    screenshot(page, "prefect-scoring-rerun-artifacts")
    page.get_by_text("scoring-transactions", exact=True).click()
    row = page.get_by_role("row").filter(has_text=SCORED_DAYS[0])
    expect(row).to_have_count(1)
    expect(row).to_contain_text("already scored (no-op)")
    screenshot(page, "prefect-scoring-rerun-no-op-artifact")
