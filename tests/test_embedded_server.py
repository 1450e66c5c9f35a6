"""The embedded Prefect server a CLI run starts when no server is set (every other test shares a real one)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from cutroom.malloc import SETTINGS
from tests.helpers import BIN, ROOT

#: Creates story-like runs all at once against the embedded server, straight over HTTP, so every 503 shows (the
#: Prefect client would retry them, seconds apart): a flow run each, then three task runs in it.
BURST = """
import asyncio, collections, sys
import httpx
from cli.embedded_server import serve_ours
from prefect.client.orchestration import get_client

serve_ours()

async def main():
    async with get_client() as prefect:
        api = str(prefect.api_url)
    async with httpx.AsyncClient(base_url=api, timeout=90) as http:
        flow = (await http.post("/flows/", json={"name": "burst"})).json()["id"]
        answers = collections.Counter()

        async def story(n):
            made = await http.post("/flow_runs/", json={"flow_id": flow, "name": f"s{n}"})
            answers[made.status_code] += 1
            for step in ("keyframe", "clip", "voice"):
                if made.status_code == 201:
                    body = {"flow_run_id": made.json()["id"], "task_key": step, "dynamic_key": "0", "name": step}
                    answers[(await http.post("/task_runs/", json=body)).status_code] += 1

        await asyncio.gather(*(story(n) for n in range(int(sys.argv[1]))))
    print(dict(answers))

asyncio.run(main())
"""


def embedded(home) -> dict[str, str]:
    """This environment without the shared test server: Prefect starts its embedded one, its home in `home`."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL" and k not in SETTINGS}
    return {**env, "PREFECT_HOME": str(home), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}


def test_runs_created_all_at_once_are_all_created_first_time(tmp_path):
    # Prefect's own embedded server answered most of these 503 "database is locked" (63 of 66 in one try).
    burst = subprocess.run(
        [sys.executable, "-c", BURST, "60"],
        env={**embedded(tmp_path / "prefect"), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert burst.returncode == 0, burst.stderr[-2000:]
    assert burst.stdout.strip().splitlines()[-1] == "{201: 240}"


def test_a_cli_run_on_the_embedded_server_leaves_its_whole_history(tmp_path):
    home = tmp_path / "prefect"
    target = tmp_path / "lighthouse.png"
    result = subprocess.run(
        [str(BIN / "cutroom"), "generate", "image", "--prompt", "A lighthouse at dawn", "--out", str(target)],
        env={**embedded(home), "CUTROOM_OUT": str(tmp_path / "work")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert target.stat().st_size > 0
    with sqlite3.connect(home / "prefect.db") as db:
        flows = db.execute("SELECT state_type FROM flow_run").fetchall()
        tasks = db.execute("SELECT state_type FROM task_run").fetchall()
    assert flows == [("COMPLETED",)]
    assert tasks and {state for (state,) in tasks} == {"COMPLETED"}


#: A command's Prefect set up as `cutroom run` sets it up: the server it launches, then a client asking it, as a
#: run's first call does. Prints the PIDs of the servers this process has before and after the client asked,
#: whether the client loaded Prefect's server code, the server it counts as shared, then waits.
SERVED = """
import asyncio, os, sys, time
from pathlib import Path
from cli.embedded_server import serve_ours
from cutroom.prefect_server import shared_server
from prefect.client.orchestration import get_client

def servers():
    me = str(os.getpid())
    return [p.name for p in Path("/proc").iterdir()
            if p.name.isdigit() and (p / "stat").read_text().rsplit(")", 1)[1].split()[1] == me]

serve_ours()
launched = servers()

async def ask():
    async with get_client() as prefect:
        await prefect.hello()

asyncio.run(ask())
print(",".join(launched), ",".join(servers()), "prefect.server.api.server" in sys.modules, shared_server(), flush=True)
time.sleep(float(sys.argv[1]))
"""


def served(home, wait_s: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SERVED, str(wait_s)],
        env={**embedded(home), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )


def running(pid: int) -> bool:
    """Whether a process is alive (an exited child not yet reaped counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not running(pid)


def test_a_command_runs_on_the_one_server_it_launched_and_stops_it_at_exit(tmp_path):
    command = served(tmp_path / "prefect", 0)
    launched, asked, server_code_loaded, shared = command.stdout.readline().split()
    assert launched.isdigit(), launched  # one server
    # glibc's malloc told to give memory back (cutroom/malloc.py): at 1000 stories the server held 285 MiB, 228 so.
    environ = Path(f"/proc/{launched}/environ").read_bytes().split(b"\0")
    assert all(f"{name}={value}".encode() in environ for name, value in SETTINGS.items())
    assert command.wait(timeout=120) == 0
    assert asked == launched  # the one server it launched as it started, not a second one
    # The client asks it by its URL: Prefect's server code (+76 MiB) stays out of the command.
    assert server_code_loaded == "False"
    # It is set as PREFECT_API_URL, yet not taken for a server others share (review gates, story pools and caps
    # across processes need one that outlives the command).
    assert shared == "None"
    assert gone_within(int(launched), 10)


def test_a_command_killed_with_sigkill_leaves_no_server_running(tmp_path):
    # Its server is in a process group of its own (a Ctrl-C is the command's to handle): a command killed, even
    # with its group, used to leave it running for good, on the database the resumed run opens.
    command = served(tmp_path / "prefect", 600)
    launched = int(command.stdout.readline().split()[0])
    command.kill()
    command.wait(timeout=10)
    assert gone_within(launched, 30)
