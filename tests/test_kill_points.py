"""`cutroom run` on S3 killed with SIGKILL at six seeded random points of one campaign, resumed after each: no
generation is created twice, nothing is paid again, and every stored object is whole.

The points are steps of the campaign, not seconds, so a seed lands on the same steps on a fast machine and on a
loaded one: a step is a write the campaign makes to its storage (a ledger entry reserved, journaled, settled; a
keyframe, a clip, a frame, a voice-over; a task result; the reel; the manifest; the report), as the test sees
them by listing the bucket. The uninterrupted run counts the steps; the seed picks six of them; the campaign then runs
again from nothing on another prefix and is killed once it has taken each picked step, then resumed."""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter

import pytest
import yaml

from cutroom.storage import S3Storage, sha256_bytes
from tests.test_durable import BRIEF, Run, accepted_creates, entries

#: Another seed picks other steps; the same seed always picks the same ones.
SEED = 15
KILLS = 6
CAMPAIGN = "kill-points"
#: The ledger states an entry in each state has been through (the first, reserved, is the entry being stored).
PASSED = {"submitted": ("submitted",), "settled": ("submitted", "settled"), "released": ("released",)}


@pytest.fixture
def on_vendors(simulator, s3, prefect_server):
    """Luma and Runway on the simulator, the campaign on S3. Vendor caps stay in-process: a killed run's leased
    slots on the server come back only after 60 s, and six kills in a row would wait on them."""
    simulator.reset(latency_scale=0.05)
    return simulator, s3, {"CUTROOM_SIMULATOR_URL": simulator.url, "CUTROOM_GLOBAL_LIMITS": "false"}


class Steps:
    """The campaign's steps so far: each object it has stored, and each ledger entry journaled and settled.

    Objects rewritten on every run (a ledger entry's timestamps) count once per state, so an uninterrupted run
    and one killed six times take the same steps, and a seed picks the same ones."""

    def __init__(self, storage: S3Storage):
        self.storage = storage
        self.seen: set[tuple[str, str]] = set()

    def count(self) -> int:
        for key in self.storage.keys(""):
            self.seen.add((key, "stored"))  # a ledger entry is stored when reserved
            if "/ledger/" in key and not {(key, "settled"), (key, "released")} & self.seen:
                state = json.loads(self.storage.read_bytes(key))["state"]
                # A state passed through between two looks still counts: settled was journaled first.
                self.seen |= {(key, s) for s in PASSED.get(state, ())}
        return len(self.seen)


def run_through(run: Run, steps: Steps) -> None:
    """Let the run end on its own, counting its steps on the way."""
    while run.proc.poll() is None:
        steps.count()
        time.sleep(0.05)
    steps.count()
    assert run.proc.returncode == 0, run.proc.stdout.read()[-4000:]


def kill_between_steps(run: Run, storage: S3Storage) -> Counter:
    """SIGKILL the run where it stands, unless it is inside the one window no client can close (a reservation
    whose submit may have been answered but not yet journaled): frozen, looked at, let go a moment if so."""
    deadline = time.monotonic() + 60
    while True:
        run.proc.send_signal(signal.SIGSTOP)
        ledger = Counter(e["state"] for e in entries(storage, CAMPAIGN))
        if not ledger["reserved"]:
            break
        run.proc.send_signal(signal.SIGCONT)
        assert time.monotonic() < deadline, "a reservation stayed unjournaled for a minute"
        time.sleep(0.01)
    run.proc.send_signal(signal.SIGKILL)
    run.proc.wait()
    return ledger


def test_six_seeded_kill_points_on_s3_never_pay_twice_nor_leave_a_bad_object(on_vendors, tmp_path):
    simulator, s3, env = on_vendors
    brief = tmp_path / "brief.yaml"
    brief.write_text(yaml.safe_dump({**BRIEF, "id": CAMPAIGN}))

    # The campaign uninterrupted: its steps, what it creates and what it costs.
    clean = S3Storage(f"s3://{s3.bucket}/kill-points-clean")
    clean_steps = Steps(clean)
    run_through(Run(brief, clean.uri("").rstrip("/"), env), clean_steps)
    reference = json.loads(clean.read_bytes(f"campaigns/{CAMPAIGN}/manifest.json"))
    reference_creates = accepted_creates(simulator.requests())
    total = len(clean_steps.seen)
    # Not the last step: a run killed there has nothing left to resume.
    points = sorted(random.Random(SEED).sample(range(1, total), KILLS))

    simulator.reset(latency_scale=0.05)
    storage = S3Storage(f"s3://{s3.bucket}/kill-points")
    where = storage.uri("").rstrip("/")
    steps = Steps(storage)
    killed = []
    for point in points:
        run = Run(brief, where, env)
        while steps.count() < point and run.proc.poll() is None:
            time.sleep(0.02)
        assert run.proc.poll() is None, (
            f"the run ended before step {point} of {total}: {run.proc.stdout.read()}"
        )
        ledger = kill_between_steps(run, storage)
        killed.append(f"step {point}/{total} (at {len(steps.seen)}; ledger {dict(ledger)})")
    output = Run(brief, where, env).finish()
    print("killed at", *killed, sep="\n  ")

    manifest = json.loads(storage.read_bytes(f"campaigns/{CAMPAIGN}/manifest.json"))
    assert manifest["status"] == "complete", output
    assert len(killed) == KILLS
    creates = accepted_creates(simulator.requests())
    per_spec = Counter(json.dumps(c["body"], sort_keys=True) for c in creates)
    assert [body for body, n in per_spec.items() if n > 1] == [], "a generation was created twice"
    assert len(creates) == len(reference_creates)
    assert manifest["ledger"]["spent_usd"] == pytest.approx(reference["ledger"]["spent_usd"])
    assert manifest["ledger"]["spent_usd"] > 0 and manifest["ledger"]["reserved_usd"] == 0
    ledger = entries(storage, CAMPAIGN)
    assert ledger and all(e["state"] == "settled" for e in ledger)

    # Every object is whole: its bytes hash to the sha256 put with it, and to the one the manifest and the
    # ledger recorded for it.
    recorded = {storage.key_of(e["uri"]): e["sha256"] for e in manifest["exports"]}
    for story in manifest["stories"]:
        for asset in [*story["candidates"], *story["clips"], story["voice"]]:
            if asset:
                recorded[storage.key_of(asset["uri"])] = asset["sha256"]
    for entry in ledger:
        recorded[storage.key_of(entry["asset"]["uri"])] = entry["asset"]["sha256"]
    keys = storage.keys("")
    assert set(recorded) <= set(keys) and manifest["exports"]
    for key in keys:
        head = storage.client.head_object(Bucket=storage.bucket, Key=storage.object_key(key))
        digest = sha256_bytes(storage.read_bytes(key))
        assert head["Metadata"]["sha256"] == digest, key
        assert recorded.get(key, digest) == digest, key
