"""deployments/prefect.yaml deployed to a real server and run by a real process worker, as from the UI or CI."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.helpers import BIN, ROOT

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


def prefect(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUTROOM_CHECKOUT": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )


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
    proc.terminate()  # before the server goes: a worker whose server is gone ignores SIGTERM
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_every_deployment_is_registered(worker):
    listed = prefect("deployment", "ls")
    for name in (
        "campaign/campaign",
        "generate/generate",
        "script_video/script-video",
        "longform_audio/longform-audio",
    ):
        assert name in listed.stdout, listed.stdout


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
