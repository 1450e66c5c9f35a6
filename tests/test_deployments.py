"""deployments/prefect.yaml deployed to a real server and run by a real process worker, as from the UI or CI."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
import yaml

from tests.helpers import BIN, ROOT, prefect
from tests.workers import stop_worker

#: Tests of this file run on one worker: its module fixtures are costly: one worker builds them once.
pytestmark = pytest.mark.xdist_group("deployments")

BRIEF = {
    "campaign": "Deploy Check",
    "brand": {"name": "Kestrel", "palette": ["#14213D", "#FCA311", "#E5E5E5"]},
    "goal": "book a test ride",
    "audience": "commuters",
    "channels": ["instagram"],
    "stories": 1,
    "quality_target": 60,
    "max_iterations": 2,
}


@pytest.fixture(scope="module")
def worker(prefect_server, tmp_path_factory):
    created = prefect("work-pool", "create", "cutroom", "--type", "process", "--overwrite")
    assert created.returncode == 0, created.stderr
    deployed = prefect("deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    log = (tmp_path_factory.mktemp("worker") / "worker.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "cutroom", "--limit", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "CUTROOM_CHECKOUT": str(ROOT), "PREFECT_WORKER_QUERY_SECONDS": "1"},
    )
    time.sleep(2)
    yield proc
    stop_worker(proc)


#: What deployments/prefect.yaml and the CI workflow say, read as the tests' expectations.
DEPLOYMENTS = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())["deployments"]
WORKFLOW = yaml.safe_load((ROOT / "deployments" / "ci" / "github-actions.yml").read_text())


def wait_for_runs(client, deployment_id: UUID, count: int, timeout: float = 600) -> list:
    """The deployment's first `count` flow runs, once every one of them has ended."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    only = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = client.read_flow_runs(deployment_filter=only)
        if len(runs) >= count and all(r.state and r.state.is_final() for r in runs):
            return sorted(runs, key=lambda r: r.expected_start_time)
        time.sleep(2)
    pytest.fail(f"{count} runs did not end in {timeout} s: {[(r.name, r.state_name) for r in runs]}")


def test_every_deployment_is_registered_with_its_schedule_and_presets(worker):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        registered = {d.name: d for d in client.read_deployments()}
    assert {d["name"] for d in DEPLOYMENTS} <= registered.keys()
    weekly = registered["weekly-social-refresh"]
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in weekly.schedules] == [
        ("0 6 * * 1", "UTC", False)
    ]
    assert weekly.parameters["dated"] == "-%G-w%V"
    assert weekly.parameters["brief"]["channels"] == ["instagram", "tiktok"]
    form = registered["campaign"].parameter_openapi_schema
    assert form["required"] == ["brief"] and {"out", "resume", "dated"} <= form["properties"].keys()


@pytest.mark.parametrize(
    ("name", "speech"),
    [("script_video/script-video", "voices"), ("longform_audio/longform-audio", "voice")],
)
def test_a_studio_deployment_takes_the_script_text(worker, name, speech):
    shown = prefect("deployment", "inspect", name, "--output", "json")
    deployment = json.loads(shown.stdout)
    schema = deployment["parameter_openapi_schema"]
    assert schema["required"] == ["script"] and schema["properties"]["script"]["type"] == "string"
    assert {"out", "campaign_id", speech} <= schema["properties"].keys()
    assert deployment["parameters"]["out"] == "cutroom-out"


def test_a_longform_script_runs_from_its_deployment(worker, tmp_path):
    script = "Settling in\nBreathe in. (2 sec)\nAnd out.\n"
    params = json.dumps({"script": script, "out": str(tmp_path), "campaign_id": "deployed"})
    run = prefect(
        "deployment",
        "run",
        "longform_audio/longform-audio",
        "--params",
        params,
        "--watch",
        "--watch-timeout",
        "120",
    )
    assert run.returncode == 0 and "Completed" in run.stdout, run.stdout + run.stderr
    manifest = json.loads((tmp_path / "campaigns" / "deployed" / "longform" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert [(s["text"], s["pause_after_s"]) for s in manifest["segments"]] == [
        ("Breathe in.", 2.0),
        ("And out.", 1.5),
    ]


def test_a_campaign_runs_from_its_deployment_with_a_typed_brief(worker, tmp_path):
    params = json.dumps({"brief": BRIEF, "out": str(tmp_path)})
    run = prefect(
        "deployment", "run", "campaign/campaign", "--params", params, "--watch", "--watch-timeout", "300"
    )
    assert run.returncode == 0 and "Completed" in run.stdout, run.stdout + run.stderr
    manifest = json.loads((tmp_path / "campaigns" / "deploy-check" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert {(e["channel"], e["aspect"]) for e in manifest["exports"]} == {
        ("instagram", "9:16"),
        ("instagram", "1:1"),
    }


def test_the_server_refuses_a_brief_that_is_not_one(worker):
    run = prefect(
        "deployment", "run", "campaign/campaign", "--params", json.dumps({"brief": {"campaign": "x"}})
    )
    assert run.returncode != 0
    assert "Validation failed for field 'brief'" in run.stdout + run.stderr


def test_a_dated_id_that_is_not_folder_safe_is_refused():
    from cutroom.brief import BriefError, parse_brief
    from flows.campaign import dated_brief

    brief = parse_brief(BRIEF)
    assert dated_brief(brief, None) is brief
    assert dated_brief(brief, "-w%V").campaign_id == f"deploy-check-w{datetime.now(UTC):%V}"
    with pytest.raises(BriefError, match="'dated' makes the campaign id 'deploy-check [A-Z]"):
        dated_brief(brief, " %A")


def test_a_schedule_remakes_the_campaign_under_a_dated_id_each_time(worker, simulator, tmp_path):
    """The weekly preset on a five-second schedule: each run its own campaign id, folder and ledger."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import RRuleSchedule

    simulator.reset(latency_scale=0.01, latency_jitter=0)
    with get_client(sync_client=True) as client:
        weekly = client.read_deployment_by_name("campaign/weekly-social-refresh")
        brief = weekly.parameters["brief"] | {
            "channels": ["tiktok"],
            "stories": 1,
            "max_iterations": 1,
            "providers": {"image": ["openai"]},
        }
        # Two runs five seconds apart, both in the future when the server's scheduler (every 5 s) first sees it.
        start = datetime.now(UTC) + timedelta(seconds=12)
        schedule = RRuleSchedule(
            rrule=f"DTSTART:{start:%Y%m%dT%H%M%SZ}\nRRULE:FREQ=SECONDLY;INTERVAL=5;COUNT=2"
        )
        env = weekly.job_variables["env"] | {
            "CUTROOM_SIMULATOR_URL": simulator.url,
            "CUTROOM_ALLOW_PRIVATE_URLS": "true",
        }
        deployment_id = client.create_deployment(
            flow_id=weekly.flow_id,
            name="every-five-seconds",
            entrypoint=weekly.entrypoint,
            pull_steps=weekly.pull_steps,
            work_pool_name=weekly.work_pool_name,
            job_variables={"env": env},
            parameter_openapi_schema=weekly.parameter_openapi_schema,
            parameters=weekly.parameters | {"brief": brief, "out": str(tmp_path), "dated": "-%Y%m%d-%H%M%S"},
            schedules=[DeploymentScheduleCreate(schedule=schedule)],
        )
        try:
            runs = wait_for_runs(client, deployment_id, 2)
        finally:
            client.delete_deployment(deployment_id)
    assert [r.state_name for r in runs] == ["Completed", "Completed"]
    ids = [f"social-refresh-{r.expected_start_time:%Y%m%d-%H%M%S}" for r in runs]
    assert len(set(ids)) == 2
    assert [r.name for r in runs] == ids, "the UI and `cutroom review` find each run by its dated id"
    for campaign_id in ids:
        folder = tmp_path / "campaigns" / campaign_id
        manifest = json.loads((folder / "manifest.json").read_text())
        assert (manifest["campaign_id"], manifest["status"]) == (campaign_id, "complete")
        paid = list((folder / "ledger").glob("*.json"))
        assert paid and manifest["ledger"]["spent_usd"] > 0, "each run pays for its own images"


def test_the_ci_workflow_deploys_and_starts_the_committed_brief(worker):
    """Every `run:` step of deployments/ci/github-actions.yml after the install, as GitHub Actions runs them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    steps = [s["run"] for s in WORKFLOW["jobs"]["deploy"]["steps"] if "run" in s and s.get("id") != "install"]
    # The repository secrets (PREFECT_API_URL) come from this environment: the session's server.
    env = os.environ | {k: v for k, v in WORKFLOW["env"].items() if "${{" not in v}
    env |= {"PATH": f"{BIN}:{env['PATH']}", "CUTROOM_CHECKOUT": str(ROOT), "COLUMNS": "200"}
    # The worker must not make the run a whole campaign: its queue holds it while the test looks at it.
    assert prefect("work-queue", "pause", "default", "--pool", "cutroom").returncode == 0
    try:
        for command in steps:
            done = subprocess.run(
                ["bash", "-e", "-c", command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        with get_client(sync_client=True) as client:
            campaign = DeploymentFilter(name=DeploymentFilterName(any_=["campaign"]))
            started = [
                r for r in client.read_flow_runs(deployment_filter=campaign) if r.state_name == "Scheduled"
            ]
            for run in started:
                client.delete_flow_run(run.id)
    finally:
        prefect("work-queue", "resume", "default", "--pool", "cutroom")
    committed = subprocess.run(
        [str(BIN / "cutroom"), "params", env["BRIEF"]], cwd=ROOT, capture_output=True, text=True
    )
    assert [r.parameters["brief"] for r in started] == [json.loads(committed.stdout)["brief"]]


def test_a_secret_block_gives_a_run_the_key_its_environment_lacks(worker, simulator, tmp_path):
    """OPENAI_API_KEY from the Secret block openai-api-key, sent to the vendor and never logged."""
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    assert "OPENAI_API_KEY" not in os.environ and "OPENAI_API_KEY" not in env_file()
    key = "sk-proj-" + "SecretBlockKey9" * 5
    simulator.reset(latency_scale=0.01, latency_jitter=0)
    Secret(value=key).save("openai-api-key", overwrite=True)
    try:
        request = {"kind": "image", "provider": "openai", "prompt": "a sunrise lamp on a bedside table"}
        env = {"OPENAI_BASE_URL": f"{simulator.url}/openai/v1", "CUTROOM_ALLOW_PRIVATE_URLS": "true"}
        run = prefect(
            "deployment", "run", "generate/generate",
            "--params", json.dumps({"request": request, "out": str(tmp_path)}),
            "--job-variable", f"env={json.dumps(env)}",
            "--watch", "--watch-timeout", "300",
        )  # fmt: skip
    finally:
        with get_client(sync_client=True) as client:
            client.delete_block_document(Secret.load("openai-api-key", _sync=True)._block_document_id)
    assert run.returncode == 0 and "Completed" in run.stdout, run.stdout + run.stderr
    made = [r for r in simulator.requests() if r["path"].startswith("/openai/v1/images")]
    assert made and all(r["status"] == 200 for r in made), made
    flow_run_id = UUID(run.stdout.split("UUID:")[1].split()[0])
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    assert logs and not any(key[8:] in log.message for log in logs)


def env_file() -> str:
    dotenv = ROOT / ".env"
    return dotenv.read_text() if dotenv.is_file() else ""
