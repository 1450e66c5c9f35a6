"""A team on Prefect: `cutroom server` on PostgreSQL, the campaign deployed from deployments/prefect.yaml, and its
stories spread over two workers — two machines in miniature, each its own processes and working folder, sharing
only the server, the bucket (SeaweedFS) and the vendors (the simulator) — one of which dies mid-campaign."""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from threading import Thread

import pytest
import yaml

from cutroom.loopback import free_port
from cutroom.storage import open_storage
from tests.helpers import cutroom, prefect
from tests.postgres_fixture import PASSWORD
from tests.team_fixture import TeamServer, team_server
from tests.test_durable import BRIEF as VENDOR_BRIEF
from tests.test_durable import accepted_creates, entries
from tests.test_fanout import assets_by_story, story_runs
from tests.test_review_gate import BRIEF as REVIEW_BRIEF
from tests.test_review_gate import paused_round
from tests.workers import process_worker, stop_worker

#: One team server (its PostgreSQL migrated once) and one set of workers serve every test here.
pytestmark = pytest.mark.xdist_group("team")

STORY_POOL = "team-stories"
MACHINES = ("machine-a", "machine-b")
BRIEF = {
    **VENDOR_BRIEF,
    "campaign": "Team Stories",
    "stories": 10,
    "max_iterations": 1,
    "budget_usd": 200,
}
#: Vendor caps above what the stories run at once: a killed machine's leased slots come back only after 60 s.
CAPS = json.dumps({"runway": {"concurrency": 20}, "luma": {"concurrency": 20}})


@pytest.fixture(scope="module")
def team(postgres: str, tmp_path_factory: pytest.TempPathFactory):
    """`cutroom server` on PostgreSQL; this process's Prefect client talks to it while the module runs."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("team-prefect")
    with team_server(home, postgres) as server, temporary_settings({PREFECT_API_URL: server.api}):
        yield server


@pytest.fixture(scope="module")
def machines(team: TeamServer, simulator, s3, tmp_path_factory):
    """deployments/prefect.yaml deployed to the team server; a worker for campaigns and one per story machine."""
    created = prefect("work-pool", "create", "cutroom", "--type", "process", "--overwrite", api=team.api)
    assert created.returncode == 0, created.stderr
    deployed = prefect("deploy", "--all", "--prefect-file", "deployments/prefect.yaml", api=team.api)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    env = {
        "PREFECT_API_URL": team.api,
        "CUTROOM_SIMULATOR_URL": simulator.url,
        "CUTROOM_PROVIDER_LIMITS": CAPS,
    }
    folder = tmp_path_factory.mktemp("machines")
    with (
        process_worker("cutroom", folder / "control", "control", env=env) as control,
        process_worker(STORY_POOL, folder / MACHINES[0], MACHINES[0], limit=2, env=env) as a,
        process_worker(STORY_POOL, folder / MACHINES[1], MACHINES[1], limit=2, env=env) as b,
    ):
        yield {"control": control, MACHINES[0]: a, MACHINES[1]: b}


def deployed_campaign(location: str, campaign_id: str, timeout_s: float = 600):
    """The campaign deployment started as the UI starts it, its stories on the story pool; the run once ended."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    story_env = {"CUTROOM_STORY_POOL": STORY_POOL, "CUTROOM_STORY_SILENCE_S": "60"}
    run = run_deployment(
        "campaign/campaign",
        parameters={"brief": {**BRIEF, "id": campaign_id}, "out": location},
        job_variables={"env": story_env},
        timeout=0,
    )
    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while not (run := client.read_flow_run(run.id)).state.is_final():
            assert time.monotonic() < deadline, f"the campaign was still {run.state.name} after {timeout_s} s"
            time.sleep(1)
    return run


def manifest_of(campaign_id: str, location: str) -> dict:
    return json.loads(open_storage(location).read_bytes(f"campaigns/{campaign_id}/manifest.json"))


def worker_of(run) -> str:
    return run.labels.get("prefect.worker.name", "")


@pytest.fixture(scope="module")
def in_process(team: TeamServer, simulator, s3, tmp_path_factory) -> tuple[dict, int]:
    """The same campaign made by one `cutroom run`, every story in its process: the manifest and the vendor
    creates it took."""
    simulator.reset(latency_scale=0.05)
    brief = tmp_path_factory.mktemp("in-process") / "brief.yaml"
    brief.write_text(yaml.safe_dump({**BRIEF, "id": "team-one-process"}))
    location = f"s3://{s3.bucket}/team"
    made = cutroom(
        "run", str(brief), "--storage", location,
        env={"PREFECT_API_URL": team.api, "CUTROOM_SIMULATOR_URL": simulator.url, "CUTROOM_PROVIDER_LIMITS": CAPS},
    )  # fmt: skip
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    return manifest_of("team-one-process", location), len(accepted_creates(simulator.requests()))


def machine_processes(worker: subprocess.Popen) -> list[int]:
    """The worker's process and every process it started (its story runs, in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [worker.pid]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def lose_machine(worker: subprocess.Popen, location: str, campaign_id: str) -> None:
    """SIGKILL the machine's every process, as a machine lost, but never inside the one window no client can
    close (a vendor's answer not yet journaled): frozen, its ledger looked at, let go a moment if so."""
    deadline = time.monotonic() + 60
    while True:
        pids = machine_processes(worker)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        if not any(e["state"] == "reserved" for e in entries(open_storage(location), campaign_id)):
            break
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        assert time.monotonic() < deadline, "a reservation stayed unjournaled for a minute"
        time.sleep(0.01)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def test_a_deployed_campaign_spreads_its_stories_over_two_machines_outlives_one_and_makes_what_one_process_makes(
    machines, in_process, simulator, s3
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    reference, creates = in_process
    simulator.reset(latency_scale=0.15)  # stories long enough to lose a machine in their middle
    location, campaign_id, lost = f"s3://{s3.bucket}/team", "team-two-machines", MACHINES[1]
    outcome: dict = {}
    wait = contextvars.copy_context().run  # the thread's Prefect client talks to the team server too
    campaign = Thread(
        target=wait, args=(lambda: outcome.setdefault("run", deployed_campaign(location, campaign_id, 900)),)
    )
    campaign.start()
    with get_client(sync_client=True) as client:
        deployment = None
        deadline = time.monotonic() + 300
        while True:
            assert campaign.is_alive() and time.monotonic() < deadline, (
                "the stories never ran on both machines"
            )
            time.sleep(0.5)
            if deployment is None:
                try:
                    deployment = client.read_deployment_by_name("story/story")
                except Exception:  # the campaign puts it on the story pool once it has planned
                    continue
            story_filter = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]))
            taken = [r for r in client.read_flow_runs(flow_run_filter=story_filter) if r.state.is_running()]
            if {worker_of(r) for r in taken} == set(MACHINES):
                break
        lose_machine(machines[lost], location, campaign_id)
        # Every run the lost machine had taken and not ended, running or still starting, is lost with it.
        held = client.read_flow_runs(flow_run_filter=story_filter)
        doomed = {r.name for r in held if worker_of(r) == lost and not r.state.is_final()}
    campaign.join(540)

    run = outcome["run"]
    assert run.state.is_completed(), run.state.message
    manifest = manifest_of(campaign_id, location)
    assert manifest["status"] == "complete"
    assert assets_by_story(manifest) == assets_by_story(reference)
    assert manifest["ledger"]["spent_usd"] == reference["ledger"]["spent_usd"] > 0
    assert len(accepted_creates(simulator.requests())) == creates  # nothing paid twice
    stories = [story for story, _ in story_runs(str(run.id))]
    assert {worker_of(s) for s in stories} == set(MACHINES)
    assert {s.name for s in stories if s.state.is_crashed()} == doomed
    finished = {s.name: worker_of(s) for s in stories if s.state.is_completed()}
    assert finished.keys() == {s["id"] for s in manifest["plan"]["stories"]}
    assert {finished[name] for name in doomed} == {MACHINES[0]}


def test_a_campaign_waiting_for_review_holds_no_worker_and_an_approval_through_the_api_finishes_it(
    machines, tmp_path
):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.flow_runs import resume_flow_run

    brief = {**REVIEW_BRIEF, "campaign": "Team Review", "stories": 1}
    started = run_deployment(
        "campaign/campaign", parameters={"brief": brief, "out": str(tmp_path / "out")}, timeout=0
    )
    run_id, asked = paused_round("team-review", 1)
    assert run_id == str(started.id)
    control = machines["control"]
    deadline = time.monotonic() + 60
    while machine_processes(control) != [control.pid]:  # suspended: the campaign's process has ended
        assert time.monotonic() < deadline, "the suspended campaign still holds a process on its worker"
        time.sleep(0.5)
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(started.id).state.name == "Suspended"
        resume_flow_run(run_id, run_input={asked[0]: {"decision": "approve"}})  # as the UI's form sends it
        deadline = time.monotonic() + 300
        while not (run := client.read_flow_run(started.id)).state.is_final():
            assert time.monotonic() < deadline, f"the approved campaign was still {run.state.name}"
            time.sleep(1)
    assert run.state.is_completed(), run.state.message
    manifest = json.loads((tmp_path / "out" / "campaigns" / "team-review" / "manifest.json").read_text())
    assert [(s["status"], bool(s["clips"])) for s in manifest["stories"]] == [("complete", True)]


def test_a_run_against_the_team_server_is_kept_in_postgresql(team: TeamServer, postgres: str, tmp_path):
    query = "SELECT flow.name, flow_run.state_type FROM flow_run JOIN flow ON flow.id = flow_run.flow_id"
    before = Counter(rows(postgres, query))
    made = cutroom(
        "generate", "image", "--prompt", "A lighthouse at dawn", "--out", str(tmp_path / "lighthouse.png"),
        env={"PREFECT_API_URL": team.api, "CUTROOM_OUT": str(tmp_path / "work")},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert Counter(rows(postgres, query)) - before == Counter({("generate", "COMPLETED"): 1})


def rows(database_url: str, query: str) -> list[tuple]:
    """The rows a query finds in the server's PostgreSQL database."""
    import asyncpg

    async def fetch() -> list[tuple]:
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            return [tuple(row) for row in await connection.fetch(query)]
        finally:
            await connection.close()

    return asyncio.run(fetch())


def test_the_server_names_its_database_without_the_password(team: TeamServer, postgres: str):
    said = team.output()
    assert postgres.replace(PASSWORD, "***") in said
    assert PASSWORD not in said
    assert f"export PREFECT_API_URL={team.api}" in said


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [("--database-url", "mysql://x", "not mysql"), ("--port", "70000", "--port 70000")],
)
def test_a_database_or_port_the_server_cannot_use_is_refused_in_one_line(option, value, named):
    refused = cutroom("server", option, value)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ") and named in refused.stderr.splitlines()[0]
    assert "Traceback" not in refused.stdout + refused.stderr


def test_a_database_that_takes_no_connection_is_refused_before_the_server_starts(postgres: str):
    port = postgres.rsplit(":", 1)[1].split("/")[0]
    for url, named in [
        (postgres.replace(PASSWORD, "not-the-password"), "password authentication failed"),
        (postgres.replace(f":{port}/", ":1/"), "nothing listens there"),
    ]:
        refused = cutroom("server", "--port", str(free_port()), "--database-url", url)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        said = " ".join(refused.stderr.split())
        assert said.startswith("error: the database") and named in said
        assert "not-the-password" not in said and "Traceback" not in said


def test_sigterm_stops_the_server_within_seconds(team: TeamServer, machines):
    for worker in machines.values():
        stop_worker(worker)
    started = time.monotonic()
    code = team.stop()
    assert time.monotonic() - started < 10
    assert code in (0, -signal.SIGTERM)  # uvicorn shuts down, then ends by the signal it was sent
    assert "Traceback" not in team.output()
