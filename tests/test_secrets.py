"""Vendor keys go to their own vendor and nowhere else: not into a log, an artifact, the manifest, the report, a
task result, the Prefect database, the terminal, nor a request to another vendor — through a campaign with
faults on the wire, a run in which every image vendor is asked and refuses, and a failing run with --verbose.

Every vendor is pointed at a loopback simulator through its base-URL variable with a distinctive key of the
shape the vendor takes, as a user configures it, so the real adapters and SDKs send the real header. The
simulator is wrapped in a recorder that keeps each request exactly as it arrived (headers, query, body), which
is what "each key only to its own vendor" is checked against."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
import yaml

from cutroom.loopback import free_port
from cutroom.storage import S3Storage
from providers import declarations
from simulator import bfl, fal, google, ideogram, leonardo, openai, replicate, runware, runway, stability
from simulator.app import build_app
from tests.helpers import BIN
from tests.simulator_fixture import SimulatorHandle


def shaped(marker: str, length: int) -> str:
    """`marker` padded to exactly `length` letters and digits: a key no other text holds, of a vendor's length."""
    return (marker + "Qx7Wm2Rt9Zp4Lk8Jh3Vb6Nc1Fd5Gs0Ty" * 2)[:length]


#: A key per variable every vendor declaration reads, each of the shape its vendor (and the simulator) accepts,
#: each with a part no other text has.
KEYS = {
    "OPENAI_API_KEY": "sk-proj-" + shaped("SECRETopenai", 40),
    "STABILITY_API_KEY": "sk-" + shaped("SECRETstability", 48),
    "IDEOGRAM_API_KEY": shaped("SECRETideogram", 32),
    "BFL_API_KEY": "5ec7e7b1-f1a1-4b2c-9d3e-0bf15ec7e7aa",
    "GEMINI_API_KEY": "AIza" + shaped("SECRETgemini", 35),
    "GOOGLE_API_KEY": "AIza" + shaped("SECRETgoogle", 35),
    "LEONARDO_API_KEY": "1e0a5ec7-e7a1-4c2d-8e3f-5ec7e71e0a5e",
    "RUNWARE_API_KEY": shaped("SECRETrunware", 32),
    "REPLICATE_API_TOKEN": "r8_" + shaped("SECRETreplicate", 37),
    "FAL_KEY": "fa15ec7e-7a11-4b2c-8d3e-fa15ec7e7a11:5ec7e7fa15ec7e7fa15ec7e7fa15ec7e",
    "RUNWAYML_API_SECRET": "key_" + "5ec7e7a1" * 16,
    "FREEPIK_API_KEY": "FPSX" + "5ec7e7f9" * 4,
    "HEYGEN_API_KEY": "sk_V2_hgu_" + shaped("SECRETheygen", 40),
    "CREATOMATE_API_KEY": "5ec7e7c4" * 8,
    # Kling signs a short-lived token with these: the secret never travels, the access key only inside the token.
    "KLING_ACCESS_KEY": shaped("SECRETklingaccess", 32),
    "KLING_SECRET_KEY": shaped("SECRETklingsecret", 32),
    # Not Luma's shape (its keys start "luma-"): Luma refuses it, as it refuses a revoked key, so a run hands over
    # past Luma too. It is sent all the same, and must not be seen anywhere else either.
    "LUMAAI_API_KEY": "lm-" + shaped("SECRETluma", 32),
    "ELEVENLABS_API_KEY": "sk_" + shaped("SECRETelevenlabs", 48),
    "ANTHROPIC_API_KEY": "sk-ant-api03-" + shaped("SECRETanthropic", 60) + "-AA",
}
NEVER_SENT_AS_IS = {"GOOGLE_API_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY"}
OWNER = {
    variable: vendor
    for vendor in declarations.vendors().values()
    for names in vendor.keys
    for variable in names.split("|")
}

BRIEF = {
    "brand": {"name": "Osprey", "palette": ["#0D1B2A", "#E0E1DD", "#FF6B35"]},
    "goal": "sell sea kayak tours",
    "audience": "weekend adventurers",
    "channels": ["x"],
    "quality_target": 1,
    "max_iterations": 1,
    "budget_usd": 20,
}
#: Every image vendor, each with its account emptied (Luma: its key refused): each is asked and passes it on.
EVERY_IMAGE_VENDOR = ["openai", "stability", "ideogram", "bfl", "google", "leonardo", "runware", "replicate",
                      "fal", "runway", "luma"]  # fmt: skip
EMPTY_ACCOUNTS = [
    (openai, "quota", {"exhausted": True}),
    (stability, "credits", {"credits": 0}),
    (ideogram, "credits", {"credits": 0}),
    (bfl, "credits", {"credits": 0}),
    (google, "account", {"billing_enabled": False}),
    (leonardo, "limits", {"api_tokens": 0}),
    (runware, "credits", {"balance": 0}),
    (replicate, "billing", {"balance_usd": 0}),
    (fal, "billing", {"balance_usd": 0}),
    (runway, "limits", {"credit_balance": 0}),
]
TRANSPORT_FAULTS = {"fault_rate": 0.3, "faults": ["429", "5xx", "timeout", "reset", "malformed"],
                    "retry_after_s": 0.2, "timeout_s": 0.5, "seed": 15}  # fmt: skip


FAST_CLIPS = """
[freepik.polling]
max_interval_s = 0.5

[[freepik.models]]
model = "kling-v2-1-std"
expected_latency_s = 1.0
min_poll_interval_s = 0.2

[heygen.polling]
max_interval_s = 0.5

[[heygen.models]]
model = "talking-photo-v2"
expected_latency_s = 1.0
min_poll_interval_s = 0.2

[creatomate.polling]
max_interval_s = 0.5

[[creatomate.models]]
model = "render"
expected_latency_s = 1.0
min_poll_interval_s = 0.2
"""
#: A one-scene script whose presenter is a HeyGen talking photo.
SCRIPT = """[Scene 1 - Welcome]
Dialogue (VO): "Welcome aboard, paddlers."
Talking photo: heygen:Monica_inSleeveless_20220819
"""


def forms(key: str) -> set[str]:
    """A key as it could show up: whole, without its public prefix, URL-encoded, base64'd (Basic auth)."""
    public = next(
        (p for p in ("sk-proj-", "sk-ant-api03-", "sk-", "key_", "r8_", "AIza", "lm-") if key.startswith(p)),
        "",
    )
    core = key[len(public) :]
    return {key, core, quote(key, safe=""), base64.b64encode(key.encode()).decode()}


FORMS = {variable: forms(key) for variable, key in KEYS.items()}


def leaks(text: str | bytes) -> list[str]:
    """The key variables any form of whose key is in `text`."""
    data = text.encode() if isinstance(text, str) else text
    return [var for var, found in FORMS.items() if any(form.encode() in data for form in found)]


class Recorder:
    """ASGI middleware keeping every request as it arrived: path, query, every header and the whole body."""

    def __init__(self, app: Any):
        self.app = app
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = {"path": scope["path"], "raw": bytearray(scope.get("query_string", b""))}
        for name, value in scope["headers"]:
            seen["raw"] += b"\n" + name + b": " + value
        self.requests.append(seen)

        async def recorded() -> Any:
            message = await receive()
            seen["raw"] += message.get("body", b"")
            return message

        await self.app(scope, recorded, send)


@pytest.fixture(scope="module")
def recorded_vendors() -> Iterator[tuple[SimulatorHandle, Recorder]]:
    """A simulator of its own, behind the recorder."""
    recorder = Recorder(build_app())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(recorder, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="recorded-simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the simulator did not start"
        time.sleep(0.02)
    handle = SimulatorHandle(f"http://127.0.0.1:{port}")
    yield handle, recorder
    handle.close()
    server.should_exit = True
    thread.join(timeout=5)


def environment(url: str, tmp_path: Path) -> dict[str, str]:
    """The keys and base URLs as a user sets them; temp files and the home folder where the test can read them."""
    env = {k: v for k, v in os.environ.items() if k != "CUTROOM_SIMULATOR_URL"}
    for vendor in declarations.vendors().values():
        if vendor.simulator and vendor.base_url_env:
            env[vendor.base_url_env] = f"{url}{vendor.simulator.prefix}"
    for folder in ("home", "tmp"):
        (tmp_path / folder).mkdir(exist_ok=True)
    # Pointed at the simulator as at a vendor, adapters poll on the vendor's clock: the user's own cards (as
    # CUTROOM_CARDS lets anyone state them) say the clips come fast, so the faults run takes seconds, not minutes.
    cards = tmp_path / "cards.toml"
    cards.write_text(FAST_CLIPS)
    return (
        env
        | KEYS
        | {
            "CUTROOM_GLOBAL_LIMITS": "false",
            "HOME": str(tmp_path / "home"),
            "TMPDIR": str(tmp_path / "tmp"),
            "COLUMNS": "200",
            "CUTROOM_CARDS": str(cards),
        }
    )


def run(
    tmp_path: Path,
    env: dict[str, str],
    name: str,
    providers: dict,
    *flags: str,
    brand: dict | None = None,
    out: str | None = None,
) -> tuple[int, str]:
    """`cutroom run` as a user runs it, in exactly `env`; its exit code and everything it printed."""
    brief = tmp_path / f"{name}.yaml"
    changes = {"brand": {**BRIEF["brand"], **(brand or {})}, "campaign": name, "providers": providers}
    brief.write_text(yaml.safe_dump({**BRIEF, **changes}))
    return cutroom(env, "run", str(brief), "--out", out or str(tmp_path / "out"), *flags)


def cutroom(env: dict[str, str], *args: str) -> tuple[int, str]:
    """A `cutroom` command in exactly `env`: its exit code and everything it printed."""
    done = subprocess.run(
        [str(BIN / "cutroom"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr


def prefect_records(api: str) -> str:
    """Every log, artifact, flow run and task run the Prefect API holds, as one text."""
    found: list[Any] = []
    with httpx.Client(base_url=api, timeout=30) as client:
        for kind in ("logs", "artifacts", "flow_runs", "task_runs"):
            offset = 0
            while True:
                page = client.post(f"/{kind}/filter", json={"limit": 200, "offset": offset}).json()
                found += page
                if len(page) < 200:
                    break
                offset += 200
    return json.dumps(found)


def test_no_key_leaves_its_vendor(recorded_vendors, prefect_server, s3, tmp_path):
    assert set(KEYS) == set(OWNER), "a vendor reads a key variable this test does not set"
    simulator, recorder = recorded_vendors
    env = environment(simulator.url, tmp_path)
    outputs = {}

    # A campaign on a vendor with faults on the wire (rate limits, 5xx, stalls, resets, cut bodies): retried. On
    # S3, so that the template vendor, which fetches its media, gets presigned links.
    simulator.reset(latency_scale=0.01, **TRANSPORT_FAULTS)
    on_s3 = f"s3://{s3.bucket}/secrets"
    code, outputs["faults"] = run(
        tmp_path,
        env,
        "Secrets Faults",
        {
            "planner": ["anthropic"],
            "judge": ["openai"],
            "image": ["openai"],
            "video": ["freepik"],
            "speech": ["elevenlabs"],
            "template": ["creatomate"],
        },
        brand={"template": "5b1c0d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"},
        out=on_s3,
    )
    assert code == 0, outputs["faults"][-3000:]

    # A scene script whose presenter is a HeyGen talking photo: the voice uploaded, the presenter made.
    simulator.reset(latency_scale=0.01)
    script = tmp_path / "welcome.txt"
    script.write_text(SCRIPT)
    code, outputs["script"] = cutroom(env, "script", str(script), "--out", str(tmp_path / "out"))
    assert code == 0, outputs["script"][-3000:]

    # Every image vendor asked in turn, none able to serve (empty accounts, a refused key): the local renderer does.
    simulator.reset(latency_scale=0.01)
    for vendor, control, change in EMPTY_ACCOUNTS:
        httpx.post(
            f"{simulator.url}{vendor.PREFIX}/_sim/{control}", json=change, timeout=10
        ).raise_for_status()
    code, outputs["every vendor"] = run(tmp_path, env, "Secrets Refused", {"image": EVERY_IMAGE_VENDOR})
    assert code == 0, outputs["every vendor"][-3000:]
    refused = json.loads((tmp_path / "out/campaigns/secrets-refused/manifest.json").read_text())
    (keyframe,) = refused["stories"][0]["candidates"]
    assert [note.split(":")[0] for note in keyframe["passed_over"]] == EVERY_IMAGE_VENDOR

    # A run that fails, shown with --verbose (Prefect's and the libraries' own logs, tracebacks): the vendor
    # refuses the prompt, and the rephrased one, so the only story is left for review and the run fails.
    simulator.reset(latency_scale=0.01, fault_rate=1.0, faults=["moderation"])
    code, outputs["failing"] = run(tmp_path, env, "Secrets Failing", {"image": ["google"]}, "--verbose")
    assert code == 1, outputs["failing"][-3000:]
    assert "| INFO" in outputs["failing"] and "| ERROR" in outputs["failing"], "--verbose showed no logs"
    failing = json.loads((tmp_path / "out/campaigns/secrets-failing/manifest.json").read_text())
    assert failing["status"] == "failed" and failing["stories"][0]["status"] == "needs_review"

    # Each key went to its own vendor, and only there.
    sent = {var: 0 for var in KEYS}
    for request in recorder.requests:
        for var in leaks(bytes(request["raw"])):
            prefix = OWNER[var].simulator.prefix
            assert request["path"].startswith(prefix), f"{var} was sent to {request['path']}"
            sent[var] += 1
    # GOOGLE_API_KEY stands behind GEMINI_API_KEY; Kling's keys never travel as they are (above).
    unsent = [var for var, n in sent.items() if n == 0 and var not in NEVER_SENT_AS_IS]
    assert unsent == [], f"never sent, so not proven: {unsent}"

    # And nowhere else: not in the simulator's own log, the terminal, any file the runs wrote (campaigns, task
    # results, temp files, home), the Prefect server's home (its database, its log), nor anything its API holds.
    log = simulator.requests()
    assert leaks(json.dumps(log)) == [], "a key is in the simulator's request log"
    assert any(
        value.endswith("…") for r in log for value in r["headers"].values()
    )  # logged as sent, not kept
    for name, text in outputs.items():
        assert leaks(text) == [], f"a key is in the {name} run's terminal output"
    prefect_home = Path(os.environ["PREFECT_HOME"])
    searched = 0
    for root in (tmp_path, prefect_home):
        for path in root.rglob("*"):
            if path.is_file():
                searched += 1
                assert leaks(path.read_bytes()) == [], f"a key is in {path}"
    assert searched > 20 and any(prefect_home.glob("*.db*"))
    assert leaks(prefect_records(os.environ["PREFECT_API_URL"])) == [], "a key is in Prefect's runs or logs"
    stored = S3Storage(on_s3)
    kept = stored.keys("campaigns/")
    assert len(kept) > 5 and all(leaks(stored.read_bytes(key)) == [] for key in kept), "a key is on S3"
