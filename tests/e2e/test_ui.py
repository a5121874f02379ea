"""What a person sees in the browser: the Prefect UI lists every deployment of prefect.yaml with its
schedule, its Run button starts a flow run that the worker completes, and the MLflow UI shows that
run's model as @champion. Headless Debian Chromium (`make browser` installs it), driven by
Playwright; a screenshot of each page (and of the last page of a failed test) goes to
test-artifacts/ui/."""

import re
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import expect, sync_playwright

from tests.e2e.conftest import api, wait_for_run

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "ui"
MODEL_NAME = "transactions-classifier"
# The Prefect UI shows a cron schedule in words, never the cron string itself.
SCHEDULE_AS_RENDERED = {"30 2 * * *": "At 02:30 AM every day", "30 3 * * *": "At 03:30 AM every day"}
DEPLOYMENT_LINK = 'a[href^="/deployments/deployment/"]'


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
    context.set_default_timeout(30_000)
    page = context.new_page()
    failures_before = request.session.testsfailed
    yield page
    if request.session.testsfailed > failures_before:
        screenshot(page, f"FAILED-{request.node.name}")
    context.close()


def deployment_link(page, name: str):
    return page.locator(DEPLOYMENT_LINK).get_by_text(name, exact=True)


def test_deployments_page_lists_prefect_yaml_with_schedules(browser, stack, page):
    ports, _, _ = stack
    declared = declared_deployments()
    page.goto(f"http://127.0.0.1:{ports['PREFECT']}/deployments")

    # One page of the list (10 rows by default) holds them all, and nothing else is registered.
    expect(page.get_by_text(f"{len(declared)} Deployments", exact=True)).to_be_visible()
    for name in declared:
        expect(deployment_link(page, name)).to_be_visible()
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
    expect(page.get_by_text("flows/train.py:train", exact=True)).to_be_visible()
    page.get_by_role("button", name="Run", exact=True).click()
    # train's parameters all have defaults (the latest labelled window), so Quick run needs none.
    with page.expect_response(
        lambda response: response.url.endswith("/create_flow_run") and response.request.method == "POST"
    ) as created:
        page.get_by_role("button", name="Quick run").click()
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
