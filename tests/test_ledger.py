"""A ledger read whole by a new process (a story run on a worker) fetches only what changed since the last whole
read, from the snapshot that read left beside it, and never trusts the snapshot over a newer entry."""

from __future__ import annotations

import pytest

from cutroom.assets import AssetKind, AssetSpec
from cutroom.ledger import (
    SNAPSHOT_AFTER,
    EntryState,
    Ledger,
    LedgerEntry,
    Snapshot,
    ledger_prefix,
    snapshot_key,
)
from cutroom.storage import LocalStorage, S3Storage

#: More entries than a read keeps a snapshot for.
ENTRIES = SNAPSHOT_AFTER + 8


class CountingS3(S3Storage):
    """The bucket as a process sees it, with the objects it fetched written down."""

    def __init__(self, location: str):
        super().__init__(location)
        self.fetched: list[str] = []

    def read_bytes(self, key: str) -> bytes:
        self.fetched.append(key)
        return super().read_bytes(key)


def spec(n: int) -> AssetSpec:
    return AssetSpec(kind=AssetKind.image, provider="luma", model="photon-1", prompt=f"shot {n}")


def entry_key(n: int) -> str:
    return f"{ledger_prefix('c')}/{spec(n).key()}.json"


def test_a_process_opening_a_large_ledger_fetches_only_the_entries_written_since_the_last_whole_read(s3):
    location = f"s3://{s3.bucket}/ledger-snapshot"
    campaign = Ledger(CountingS3(location), "c")
    for n in range(ENTRIES):
        campaign.reserve(spec(n), 0.1, budget_usd=None, story_id=f"s{n}")

    first = CountingS3(location)
    Ledger(first, "c")
    assert len(first.fetched) == ENTRIES  # no snapshot yet: every entry, and the read is kept

    campaign.submitted(spec(0).key(), "job-0")
    campaign.settled(spec(1).key(), 0.1, None)
    campaign.released(spec(2).key(), "refused")
    campaign.reserve(spec(ENTRIES), 0.1, budget_usd=None, story_id="late")
    later = CountingS3(location)
    ledger = Ledger(later, "c")

    changed = {entry_key(0), entry_key(1), entry_key(2), entry_key(ENTRIES)}
    assert sorted(later.fetched) == sorted({snapshot_key("c")} | changed)
    assert [ledger.entry(spec(n).key()).state for n in range(4)] == [
        EntryState.submitted,
        EntryState.settled,
        EntryState.released,
        EntryState.reserved,
    ]
    assert ledger.entry(spec(0).key()).job_id == "job-0"
    assert len(ledger.entries()) == ENTRIES + 1
    assert ledger.committed_usd() == pytest.approx(0.1 * ENTRIES)  # each holds 0.1 but the released one


def test_a_snapshot_it_cannot_read_is_read_past_and_replaced(tmp_path):
    storage = LocalStorage(tmp_path)
    campaign = Ledger(storage, "c")
    for n in range(ENTRIES):
        campaign.reserve(spec(n), 0.1, budget_usd=None, story_id=f"s{n}")
    (tmp_path / snapshot_key("c")).write_text('{"written by": "another version"}')
    campaign.settled(spec(0).key(), 0.25, None)

    ledger = Ledger(storage, "c")

    assert ledger.entry(spec(0).key()).paid_usd == 0.25
    assert ledger.committed_usd() == pytest.approx(0.25 + 0.1 * (ENTRIES - 1))
    kept = Snapshot.parse((tmp_path / snapshot_key("c")).read_bytes())
    assert LedgerEntry.model_validate_json(kept.entries[entry_key(0)][1]).paid_usd == 0.25
    assert len(kept.entries) == ENTRIES
