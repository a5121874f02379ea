"""prefect.yaml's schedules follow the feed's partitions: `inferloop deploy` derives the crons from
the dataset spec, and compose and Kubernetes, which run `prefect deploy` themselves, default to a
daily feed's."""

import re

import pytest
from prefect.utilities.templating import apply_values

from inferloop.core.periods import Partitioning
from inferloop.stack.control import deployment_crons
from tests.infra.infra_files import COMPOSE_SERVICES, K8S, REPO_ROOT, env_file, read_yaml

PREFECT_YAML = read_yaml(REPO_ROOT / "prefect.yaml")[0]


@pytest.mark.parametrize(
    ("unit", "score", "monitor"),
    [
        ("hour", "10 * * * *", "40 * * * *"),
        ("day", "30 2 * * *", "30 3 * * *"),
        ("week", "30 2 * * 1", "30 3 * * 1"),  # ISO weeks start on Monday
        ("month", "30 2 1 * *", "30 3 1 * *"),
    ],
)
def test_scoring_then_monitoring_run_once_per_partition(unit, score, monitor):
    assert deployment_crons(Partitioning(unit)) == {
        "SCORING_CRON": score,
        "MONITORING_CRON": monitor,
    }


def test_every_templated_schedule_of_prefect_yaml_is_derived(monkeypatch):
    schedules = {d["name"]: d.get("schedules", []) for d in PREFECT_YAML["deployments"]}
    templated = {
        match
        for entries in schedules.values()
        for entry in entries
        for match in re.findall(r"\{\{ \$(\w+) \}\}", entry["cron"])
    }
    assert templated == set(deployment_crons(Partitioning("day")))
    # What `prefect deploy` makes of them with the variables `inferloop deploy` sets.
    for name, cron in deployment_crons(Partitioning("month")).items():
        monkeypatch.setenv(name, cron)
    resolved = apply_values(schedules, {})
    assert resolved["batch-inference-daily"][0]["cron"] == "30 2 1 * *"
    assert resolved["monitor-daily"][0]["cron"] == "30 3 1 * *"


def test_compose_and_kubernetes_default_to_a_daily_feeds_crons():
    daily = deployment_crons(Partitioning("day"))
    compose = COMPOSE_SERVICES["prefect-deploy"]["environment"]
    assert {name: re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", compose[name]) for name in daily} == daily
    config = env_file(K8S / "config.env")
    assert {name: config[name] for name in daily} == daily
