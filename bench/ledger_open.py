"""P7's ledger row: what a new story run pays to open the ledger of a campaign late in its life.

A batch run started late in a 10,000-story campaign reads a ledger of ≈ 20,000 settled entries (a keyframe and a
clip per story) from the snapshot the last whole read left. The process is weighed from its own
/proc/self/status: VmHWM is reset at exec, unlike ru_maxrss (see bench.campaigns.run_child). Beside it, the same
entries made into models, as the ledger held them before it kept their stored bytes.

    python -m bench.ledger_open FOLDER open|models   # one measurement, as JSON on stdout
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Row, ratio

#: Entries in the ledger: two per story of P7's pool row (quick: of a 1,000-story campaign).
ENTRIES = {False: 20_000, True: 2_000}
CAMPAIGN = "late"
PROMPT = (
    "Aurora smart lamp on a walnut desk at dusk, warm amber glow against a teal wall, the brand's wordmark lit "
    "on the base; slow push-in, shallow depth of field, soft film grain, calm and premium, no people in frame. "
)


def ledger_row(work: Path, quick: bool) -> Row:
    entries = ENTRIES[quick]
    folder = work / "ledger-open"
    write_ledger(folder, entries)
    measure(folder, "open")  # the first whole read, which leaves the snapshot
    opened, models = measure(folder, "open"), measure(folder, "models")
    return Row(
        subject=f"a new story run opening a campaign's ledger of {entries:,} settled entries (a keyframe and a "
        "clip per story, scored), from its snapshot, on local storage",
        figures=opened,
        baselines={"the entries as models": models},
        ratios={
            "held vs as models": ratio(opened["held MiB"], models["held MiB"]),
            "s vs as models": ratio(opened["s"], models["s"]),
        },
        target="reported (part of each run's RSS in the pool row)",
        met=True,
    )


def measure(folder: Path, mode: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ledger_open", str(folder), mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    return json.loads(done.stdout)


def write_ledger(folder: Path, entries: int) -> None:
    from cutroom.assets import Asset, AssetKind, Score
    from cutroom.ledger import EntryState, LedgerEntry, ledger_prefix

    ledger = folder / ledger_prefix(CAMPAIGN)
    ledger.mkdir(parents=True)
    for n in range(entries):
        story, kind = f"story-{n // 2:05d}", (AssetKind.image, AssetKind.video)[n % 2]
        key = f"{n:064x}"
        asset = Asset(
            spec_key=key,
            kind=kind,
            provider=("luma", "runway")[n % 2],
            model=("photon-flash-1", "gen4_turbo")[n % 2],
            prompt=PROMPT,
            params={"aspect": "9:16", "width": 720, "height": 1280, "seed": n}
            | ({"duration_s": 5} if n % 2 else {}),
            uri=f"s3://media/campaigns/{CAMPAIGN}/assets/{key}.{('png', 'mp4')[n % 2]}",
            sha256=key,
            mime=("image/png", "video/mp4")[n % 2],
            width=720,
            height=1280,
            duration_s=5.0 if n % 2 else None,
            cost_usd=0.25,
            story_id=story,
            score=Score(
                total=81, criteria={"brand": 84, "clarity": 78, "composition": 80, "channel fit": 82}
            ),
            run_id="0c4f6e4e-8f0e-4a0f-a0a4-d0a5c3e5e001",
            job_id=f"job-{n}",
            source_url=f"https://cdn.example.com/{key}",
        )
        entry = LedgerEntry(
            spec_key=key,
            story_id=story,
            provider=asset.provider,
            model=asset.model,
            state=EntryState.settled,
            estimate_usd=0.25,
            paid_usd=0.25,
            job_id=asset.job_id,
            asset=asset,
            note=f"{asset.provider}/{asset.model} {kind.value}",
        )
        (ledger / f"{key}.json").write_text(entry.model_dump_json())


def _status_mib(field: str) -> float:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1]) / 1024


def _measure(folder: Path, mode: str) -> dict[str, float]:
    from cutroom.ledger import Ledger, LedgerEntry, Snapshot, ledger_prefix, snapshot_key
    from cutroom.storage import LocalStorage

    base = _status_mib("VmRSS:")
    started = time.perf_counter()
    if mode == "open":
        held = Ledger(LocalStorage(folder), CAMPAIGN)
    else:  # the same listing and snapshot, every entry made a model
        storage = LocalStorage(folder)
        listed = storage.versions(ledger_prefix(CAMPAIGN))
        snapshot = Snapshot.parse(storage.read_bytes(snapshot_key(CAMPAIGN)))
        held = [LedgerEntry.model_validate_json(snapshot.entries[key][1]) for key in listed]
        del snapshot
    took = time.perf_counter() - started
    assert held
    return {"s": took, "held MiB": _status_mib("VmRSS:") - base, "peak MiB": _status_mib("VmHWM:") - base}


if __name__ == "__main__":
    print(json.dumps(_measure(Path(sys.argv[1]), sys.argv[2])))
