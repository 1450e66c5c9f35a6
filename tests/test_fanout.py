"""A run of the pool (a story's, or a batch's: CUTROOM_STORY_BATCH) whose process dies under a live worker
(CUTROOM_STORY_POOL) is started again and pays nothing twice.

Stories spread over two machines, one of them lost, are tests/test_team_scale.py's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from uuid import UUID

import pytest
import yaml

from cutroom.storage import open_storage
from tests.helpers import BIN
from tests.test_durable import BRIEF as VENDOR_BRIEF
from tests.test_durable import accepted_creates, entries
from tests.workers import process_worker

#: Tests of this file run on one worker: one process worker serves them all.
pytestmark = pytest.mark.xdist_group("fanout")

POOL = "fanout-stories"


#: Vendors on the simulator wherever a story runs; caps above what a brief runs at once, so a story started again
#: never waits for the 60 s lease of a slot its killed run held.
VENDOR_ENV = {
    "CUTROOM_PROVIDER_LIMITS": json.dumps({"runway": {"concurrency": 8}, "luma": {"concurrency": 8}})
}


@pytest.fixture(scope="module")
def story_worker(prefect_server, simulator, tmp_path_factory):
    env = {**VENDOR_ENV, "CUTROOM_SIMULATOR_URL": simulator.url}
    with process_worker(POOL, tmp_path_factory.mktemp("machine-a"), "machine-a", env=env) as worker:
        yield worker


def assets_by_story(manifest: dict) -> dict[str, set[str]]:
    return {s["story_id"]: {a["sha256"] for a in _assets(s)} for s in manifest["stories"]}


def _assets(story: dict) -> list[dict]:
    return [*story["candidates"], *story["clips"], *(a for a in (story["voice"], story["render"]) if a)]


def story_runs(campaign_run: str):
    """The flow runs started under a campaign run, each with the task run that stands for it in the campaign."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[UUID(campaign_run)])
            )
        )
        return [(run, client.read_task_run(run.parent_task_run_id)) for run in runs]


def running_story_processes() -> dict[int, str]:
    """Processes of runs of the pool (a story's or a batch's) now Running on this machine, by pid: the flow-run id
    each serves."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    from flows.fanout import BATCH_DEPLOYMENT, STORY_DEPLOYMENT

    with get_client(sync_client=True) as client:
        deployments = [
            client.read_deployment_by_name(name).id for name in (STORY_DEPLOYMENT, BATCH_DEPLOYMENT)
        ]
        running = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=deployments),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])),
            )
        )
    ids = {str(run.id) for run in running}
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        for var in env:
            if var.startswith(b"PREFECT__FLOW_RUN_ID=") and var.split(b"=", 1)[1].decode() in ids:
                found[int(entry.name)] = var.split(b"=", 1)[1].decode()
    return found


@pytest.mark.parametrize("batch", [1, 2], ids=["a run per story", "both stories in one batch"])
def test_a_run_of_the_pool_killed_mid_video_is_started_again_and_nothing_is_paid_twice(
    story_worker, simulator, tmp_path, batch
):
    simulator.reset(latency_scale=0.2)
    brief = tmp_path / "brief.yaml"
    brief.write_text(yaml.safe_dump({**VENDOR_BRIEF, "campaign": "Fan Crash", "stories": 2}))
    env = {
        **os.environ,
        **VENDOR_ENV,
        "CUTROOM_SIMULATOR_URL": simulator.url,
        "CUTROOM_STORY_POOL": POOL,
        "CUTROOM_STORY_BATCH": str(batch),
    }
    campaign = subprocess.Popen(
        [str(BIN / "cutroom"), "run", str(brief), "--out", str(tmp_path / "out")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = open_storage(str(tmp_path / "out"))
    deadline = time.monotonic() + 300
    # Killed once a clip has started and the journal holds every job a vendor took: between a vendor's answer and
    # that write no client of these APIs can know the job exists (tests/test_durable.py), so a kill there pays again.
    while not (
        any("runway" in c["path"] for c in accepted_creates(simulator.requests()))
        and not any(e["state"] == "reserved" for e in entries(out, "fan-crash"))
    ):
        assert campaign.poll() is None and time.monotonic() < deadline, "no clip was ever started"
        time.sleep(0.2)
    killed = running_story_processes()
    assert killed, "no run of the pool was running when its first clip had started"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    out, _ = campaign.communicate(timeout=600)

    assert campaign.returncode == 0, out
    manifest = json.loads((tmp_path / "out" / "campaigns" / "fan-crash" / "manifest.json").read_text())
    assert [s["status"] for s in manifest["stories"]] == ["complete", "complete"]
    runs = [run for run, _ in story_runs(manifest["run_id"])]
    assert {str(r.id) for r in runs if r.state.is_crashed()} == set(killed.values())
    assert sum(r.state.is_completed() for r in runs) == 2 // batch  # each story once, alone or in the batch
    # A create made again would be a job no asset came from (both stories here ask for the same pictures).
    jobs = {a["job_id"] for story in manifest["stories"] for a in _assets(story) if a.get("job_id")}
    assert len(accepted_creates(simulator.requests())) == len(jobs) > 0


def test_a_batch_of_stories_is_one_run_of_the_pool_with_each_story_its_own_run_inside_it(
    story_worker, simulator, tmp_path
):
    simulator.reset(latency_scale=0.05)
    brief = tmp_path / "brief.yaml"
    brief.write_text(yaml.safe_dump({**VENDOR_BRIEF, "campaign": "Fan Batch", "stories": 3}))
    env = {
        **os.environ,
        **VENDOR_ENV,
        "CUTROOM_SIMULATOR_URL": simulator.url,
        "CUTROOM_STORY_POOL": POOL,
        "CUTROOM_STORY_BATCH": "2",
    }
    done = subprocess.run(
        [str(BIN / "cutroom"), "run", str(brief), "--out", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((tmp_path / "out" / "campaigns" / "fan-batch" / "manifest.json").read_text())
    assert [s["status"] for s in manifest["stories"]] == ["complete"] * 3
    ids = [s["story_id"] for s in manifest["stories"]]
    runs = {run.name: run for run, _ in story_runs(manifest["run_id"])}
    # Two runs of the pool for three stories: the first two in one batch, the last alone.
    assert runs.keys() == {f"{ids[0]}…{ids[1]}", ids[2]}
    assert all(run.state.is_completed() for run in runs.values())
    inside = [run for run, _ in story_runs(str(runs[f"{ids[0]}…{ids[1]}"].id))]
    assert sorted(run.name for run in inside) == ids[:2]
    assert all(run.state.is_completed() for run in inside)
    jobs = {a["job_id"] for story in manifest["stories"] for a in _assets(story) if a.get("job_id")}
    assert len(accepted_creates(simulator.requests())) == len(jobs) > 0
