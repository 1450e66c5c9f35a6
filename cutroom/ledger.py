"""A campaign's ledger: every paid generation journaled durably, so no crash pays twice or passes the budget.

Each generation has one entry, keyed by its spec hash and stored beside the campaign
(`campaigns/{campaign}/ledger/{spec_key}.json`, on the campaign's own storage):

    reserved ──submit accepted──▶ submitted(job id) ──output stored──▶ settled(cost, asset)
        └──────── refused, failed or cancelled (the vendor does not bill) ──▶ released

An entry is written before each step's effect can be lost: the reservation before the submit, the job id the
moment the vendor accepts it (before any polling), the asset once it is stored. A rerun reads the entries
back, re-attaches to jobs still in flight, and reuses settled assets without asking the vendor again.

A process reads the ledger whole when it opens it (a story run on a worker learns what the others spent), and
keeps what it read beside it (`campaigns/{campaign}/ledger-snapshot.tsv`: each entry with the version storage listed
it at), so the next process fetches only the entries written since: one listing and one object, not one request
per entry, which a story run started late in a campaign of thousands of stories paid for in minutes. It holds each
entry as its stored bytes and reads only its tally (state, cost, time) from them; the entry itself is made when
asked for: 20,000 entries with their assets took ≈ 400 MiB as models, and a story run needs its own few.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, Field

from cutroom.assets import Asset, AssetSpec
from cutroom.storage import Storage, campaign_prefix


class EntryState(StrEnum):
    reserved = "reserved"
    submitted = "submitted"
    settled = "settled"
    released = "released"

    @property
    def in_flight(self) -> bool:
        return self in (EntryState.reserved, EntryState.submitted)


class Tally(BaseModel):
    """What the budget reads of an entry: read from its stored bytes, the rest of them (the asset, its words, its
    prompt) skipped."""

    spec_key: str
    state: EntryState
    estimate_usd: float = Field(ge=0, description="What the rate card says the generation costs.")
    paid_usd: float = Field(default=0.0, ge=0, description="What the vendor billed, once it finished.")
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def committed_usd(self) -> float:
        """Money this entry holds against the budget: what was paid plus what is still reserved."""
        return self.paid_usd + (self.estimate_usd if self.state.in_flight else 0.0)


class LedgerLine(Tally):
    """An entry as the manifest lists it: who was paid for what, and how it stands. The asset it stored is in its
    story's record; a campaign of 10,000 stories kept a second copy of each in memory (≈ 185 MiB) to write it."""

    story_id: str | None = None
    provider: str
    model: str
    job_id: str | None = None
    note: str = Field(default="", description="What was paid for, or why its reservation was released.")


class LedgerEntry(LedgerLine):
    handle: dict[str, str] = Field(
        default_factory=dict, description="What the vendor needs besides the job id to find the job again."
    )
    asset: Asset | None = Field(default=None, description="The stored output, once settled.")


class OverBudget(Exception):
    """A submit that would take the campaign past its budget; nothing was sent to the vendor."""

    def __init__(self, what: str, estimate_usd: float, committed_usd: float, budget_usd: float):
        self.estimate_usd = estimate_usd
        super().__init__(
            f"over budget: {what} needs ${estimate_usd:.2f}, "
            f"but ${committed_usd:.2f} of the ${budget_usd:.2f} budget is already spent or reserved"
        )


class LedgerSummary(BaseModel):
    """The ledger as the manifest records it."""

    budget_usd: float
    estimated_usd: float = Field(description="The plan's estimate before anything ran.")
    spent_usd: float = Field(description="What vendors billed for this campaign, in every run.")
    reserved_usd: float = Field(default=0.0, description="Held for jobs still in flight.")
    over_budget: list[str] = Field(default_factory=list, description="Stories left out to keep to budget.")
    entries: list[LedgerLine] = Field(default_factory=list, description="Every paid call, oldest first.")


def summarise(
    ledger: Ledger, budget_usd: float, estimated_usd: float, over_budget: list[str]
) -> LedgerSummary:
    """The ledger as the manifest records it, read again from storage: with stories on other workers, their
    processes wrote the entries."""
    ledger.refresh()
    entries = ledger.lines()
    return LedgerSummary(
        budget_usd=budget_usd,
        estimated_usd=round(estimated_usd, 4),
        spent_usd=round(sum(e.paid_usd for e in entries), 4),
        reserved_usd=round(sum(e.estimate_usd for e in entries if e.state.in_flight), 4),
        over_budget=over_budget,
        entries=entries,
    )


def ledger_prefix(campaign_id: str) -> str:
    return f"{campaign_prefix(campaign_id)}/ledger"


def snapshot_key(campaign_id: str) -> str:
    return f"{campaign_prefix(campaign_id)}/ledger-snapshot.tsv"


@dataclass(frozen=True, slots=True)
class Held:
    """An entry as a process holds it: its tally, and the bytes it is stored as, read into a LedgerEntry when
    asked for."""

    tally: Tally
    stored: bytes

    @classmethod
    def of(cls, entry: LedgerEntry) -> Held:
        return cls(entry, entry.model_dump_json().encode())

    def entry(self) -> LedgerEntry:
        return (
            self.tally
            if isinstance(self.tally, LedgerEntry)
            else LedgerEntry.model_validate_json(self.stored)
        )


@dataclass(frozen=True)
class Snapshot:
    """The ledger as a process last read it whole: under each entry's storage key, the version storage listed that
    key at and the entry's bytes. An entry whose listed version differs was written since, and is fetched again.

    Stored as text: a header naming the format, then a line per entry, `key TAB version TAB entry`; keys and
    versions hold no tab and entries are compact JSON, which holds no raw tab or newline."""

    entries: dict[str, tuple[str, bytes]]

    HEADER: ClassVar[bytes] = b"cutroom ledger snapshot 1"

    @classmethod
    def parse(cls, data: bytes) -> Snapshot | None:
        """The snapshot `data` holds; None when it is not one this version of Cutroom writes."""
        header, _, body = data.partition(b"\n")
        if header != cls.HEADER:
            return None
        entries = {}
        for line in body.split(b"\n") if body else []:
            fields = line.split(b"\t", 2)
            if len(fields) != 3:
                return None
            key, version, stored = fields
            entries[key.decode()] = (version.decode(), stored)
        return cls(entries)

    def dump(self) -> bytes:
        lines = [f"{key}\t{version}\t".encode() + stored for key, (version, stored) in self.entries.items()]
        return b"\n".join([self.HEADER, *lines])


#: Entries fetched at once when the ledger is read from storage.
READERS = 16
#: Entries fetched one by one, past which a read is kept as the new snapshot.
SNAPSHOT_AFTER = 64


class Ledger:
    """The entries of one campaign on one storage; thread-safe, shared by every task of a process."""

    def __init__(self, storage: Storage, campaign_id: str):
        self.storage = storage
        self.campaign_id = campaign_id
        self._lock = threading.Lock()
        self._held: dict[str, Held] = {}
        self.refresh()

    def refresh(self) -> None:
        """Read every entry again from storage: what other processes wrote since (story runs on other workers).

        Entries the snapshot holds at their listed version come from it; the rest are fetched, READERS at once,
        and past SNAPSHOT_AFTER of them the whole read is kept as the next snapshot."""
        listed = self.storage.versions(ledger_prefix(self.campaign_id))
        kept = self._snapshot().entries
        fresh = [key for key, version in listed.items() if key not in kept or kept[key][0] != version]
        with ThreadPoolExecutor(READERS, thread_name_prefix="cutroom-ledger") as pool:
            fetched = dict(zip(fresh, pool.map(self._fetch, fresh), strict=True))
        read = {key: fetched.get(key) or kept[key][1] for key in listed}
        if len(fresh) > SNAPSHOT_AFTER:
            self.storage.put_bytes(
                snapshot_key(self.campaign_id),
                Snapshot({key: (listed[key], stored) for key, stored in read.items()}).dump(),
                "text/plain",
                replace=True,
            )
        tallied = [Held(Tally.model_validate_json(stored), stored) for stored in read.values()]
        with self._lock:
            for held in tallied:  # a write of this process racing the read keeps the newer entry
                known = self._held.get(held.tally.spec_key)
                if known is None or held.tally.updated_at >= known.tally.updated_at:
                    self._held[held.tally.spec_key] = held

    def _fetch(self, key: str) -> bytes:
        """The entry under `key`, checked whole and stored again as compact JSON (one line in the snapshot)."""
        return LedgerEntry.model_validate_json(self.storage.read_bytes(key)).model_dump_json().encode()

    def _snapshot(self) -> Snapshot:
        """The last whole read kept beside the ledger; an empty one when there is none, or one this version of
        Cutroom cannot read (every entry is then fetched, and the next snapshot replaces it)."""
        key = snapshot_key(self.campaign_id)
        kept = self.storage.exists(key) and Snapshot.parse(self.storage.read_bytes(key))
        return kept or Snapshot({})

    def entry(self, spec_key: str) -> LedgerEntry | None:
        with self._lock:
            held = self._held.get(spec_key)
        return held.entry() if held else None

    def entries(self) -> list[LedgerEntry]:
        return [h.entry() for h in self._oldest_first()]

    def lines(self) -> list[LedgerLine]:
        """Every entry as the manifest lists it, read from its stored bytes without its asset."""
        return [LedgerLine.model_validate_json(h.stored) for h in self._oldest_first()]

    def _oldest_first(self) -> list[Held]:
        with self._lock:
            return sorted(self._held.values(), key=lambda h: h.tally.updated_at)

    def committed_usd(self) -> float:
        with self._lock:
            return sum(h.tally.committed_usd for h in self._held.values())

    def reserve(
        self, spec: AssetSpec, estimate_usd: float, budget_usd: float | None, story_id: str | None
    ) -> LedgerEntry:
        """Hold the estimate before a submit; refuse (OverBudget) when it would pass the budget."""
        what = f"{spec.provider}/{spec.model} {spec.kind.value}"
        return self.hold(spec.key(), spec.provider, spec.model, estimate_usd, budget_usd, story_id, what)

    def hold(
        self,
        key: str,
        provider: str,
        model: str,
        estimate_usd: float,
        budget_usd: float | None,
        story_id: str | None,
        what: str,
    ) -> LedgerEntry:
        """Hold the estimate of a paid call (a generation, a language model's answer) under `key`."""
        with self._lock:
            held = self._held.get(key)
            others = sum(h.tally.committed_usd for k, h in self._held.items() if k != key)
            already = held.tally.paid_usd if held else 0.0
            if budget_usd is not None and others + already + estimate_usd > budget_usd + 1e-9:
                raise OverBudget(what, estimate_usd, others + already, budget_usd)
            return self._write(
                LedgerEntry(
                    spec_key=key,
                    story_id=story_id,
                    provider=provider,
                    model=model,
                    state=EntryState.reserved,
                    estimate_usd=estimate_usd,
                    paid_usd=already,
                    note=what,
                )
            )

    def submitted(self, spec_key: str, job_id: str, handle: dict[str, str] | None = None) -> LedgerEntry:
        return self._update(spec_key, state=EntryState.submitted, job_id=job_id, handle=handle or {})

    def settled(
        self, spec_key: str, cost_usd: float, asset: Asset | None, note: str | None = None
    ) -> LedgerEntry:
        """The output is stored (or, for a language model, answered); its cost is paid once: fetching a settled
        job's output again is free."""
        with self._lock:
            entry = self._held[spec_key].entry()
            paid = entry.paid_usd if entry.state is EntryState.settled else entry.paid_usd + cost_usd
            return self._write(
                entry.model_copy(
                    update={
                        "state": EntryState.settled,
                        "paid_usd": paid,
                        "asset": asset,
                        "note": entry.note if note is None else note,
                        "updated_at": datetime.now(UTC),
                    }
                )
            )

    def released(self, spec_key: str, why: str) -> LedgerEntry:
        return self._update(spec_key, state=EntryState.released, job_id=None, note=why)

    def _update(self, spec_key: str, **changes: object) -> LedgerEntry:
        with self._lock:
            entry = self._held[spec_key].entry()
            return self._write(entry.model_copy(update={**changes, "updated_at": datetime.now(UTC)}))

    def _write(self, entry: LedgerEntry) -> LedgerEntry:
        """Durable first, then in memory: an entry the process knows of is one a rerun will find."""
        held = Held.of(entry)
        self.storage.put_bytes(
            f"{ledger_prefix(self.campaign_id)}/{entry.spec_key}.json",
            held.stored,
            "application/json",
            replace=True,  # an entry changes on every write: one PUT, no HEAD first, a shorter crash window
        )
        self._held[entry.spec_key] = held
        return entry


_open: dict[tuple[str, str], Ledger] = {}
_open_lock = threading.Lock()


def ledger_for(storage: Storage, campaign_id: str) -> Ledger:
    """The process's one ledger for a campaign on a storage, read from storage on first use."""
    where = (storage.uri(""), campaign_id)
    with _open_lock:
        if where not in _open:
            _open[where] = Ledger(storage, campaign_id)
        return _open[where]
