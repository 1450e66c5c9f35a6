"""A property-based fuzzer over briefs: generated and mutated documents must each end as a valid brief or a clean
validation error — never a crash — in under a second and 100 MB, with the error at most 2 KB."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cutroom.brief import Brief, BriefError, load_brief

GOOD: dict[str, Any] = {
    "campaign": "Spring Drop",
    "brand": {"name": "Fern", "palette": ["#224422", "#F0E68C"], "voice": "warm"},
    "goal": "sell the spring collection",
    "audience": "gardeners",
    "channels": ["instagram", "tiktok"],
    "budget_usd": 40,
    "providers": {"image": ["luma", "local"]},
}


def _memory(field: str) -> int:
    """A figure of this process's memory from /proc, in bytes: VmRSS now, VmHWM its peak since the last reset."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # the kernel reports KiB
    raise LookupError(field)


def _reset_peak() -> None:
    """Start VmHWM again from the present size (Linux ≥ 4.0), so the peak measured is this document's alone,
    whatever the tests run before in this process peaked at."""
    Path("/proc/self/clear_refs").write_text("5")


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.builds(lambda c, n: c * n, st.characters(max_codepoint=0x3000), st.integers(1000, 20_000)),
    st.sampled_from(
        ["", "   ", "\x07bell", "a\u202eb", "#FFFFFF", "instagram", "luma", "1e309", "../../etc/passwd"]
    ),
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)  # fmt: skip
#: Where in a brief a mutation lands: a top-level field, a brand field, or a key no brief has.
PATHS = [*([k] for k in GOOD), *(["brand", k] for k in ("name", "palette", "voice", "logo", "avoid")),
         ["stories"], ["quality_target"], ["id"], ["unknown_field"]]  # fmt: skip


def mutated(
    document: dict[str, Any], edits: list[tuple[list[str], Any]], drops: list[list[str]]
) -> dict[str, Any]:
    data = json.loads(json.dumps(document))
    for path, value in edits:
        target = data
        for key in path[:-1]:
            target = target.setdefault(key, {}) if isinstance(target.get(key), dict) else target
        target[path[-1]] = value
    for path in drops:
        (data.get(path[0]) if len(path) > 1 and isinstance(data.get(path[0]), dict) else data).pop(
            path[-1], None
        )
    return data


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, bytes]:
    """A brief file's name and bytes: a mutated good brief as YAML or JSON, sometimes with bytes spliced in,
    sometimes with YAML anchors and aliases."""
    edits = draw(st.lists(st.tuples(st.sampled_from(PATHS), values), max_size=4))
    drops = draw(st.lists(st.sampled_from(PATHS), max_size=2))
    data = mutated(GOOD, edits, drops)
    as_json = draw(st.booleans())
    text = json.dumps(data, allow_nan=True) if as_json else yaml.safe_dump(data, allow_unicode=True)
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 3)) == 0:  # splice random bytes in: broken syntax, broken UTF-8
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(max_size=16)) + raw[at:]
    if not as_json and draw(st.integers(0, 5)) == 0:  # anchors and aliases, a few or a bomb's worth
        depth = draw(st.integers(1, 8))
        lines = ["a0: &a0 [x, x, x, x]"] + [
            f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, depth)
        ]
        raw = ("\n".join(lines) + f"\nbomb: *a{depth - 1}\n").encode() + raw
    return ("brief.json" if as_json else "brief.yaml"), raw


def check_document(folder: Path, document: tuple[str, bytes], runs: dict[str, int]) -> None:
    """One document: a valid brief or a clean error, in under a second and 100 MB, the error at most 2 KB."""
    name, raw = document
    path = folder / name
    path.write_bytes(raw)
    _reset_peak()
    before = _memory("VmRSS")
    started = time.perf_counter()
    try:
        outcome: Brief | BriefError = load_brief(path)
    except BriefError as refused:
        outcome = refused
    took = time.perf_counter() - started
    grew = _memory("VmHWM") - before
    runs["documents"] += 1
    assert took < 1.0, f"{took:.2f} s"
    assert grew < 100 * 1024 * 1024, f"{grew / 2**20:.0f} MiB"
    if isinstance(outcome, BriefError):
        runs["refused"] += 1
        assert len(str(outcome)) <= 2048, len(str(outcome))
        assert outcome.problems and all(isinstance(p, str) for p in outcome.problems)
    else:
        runs["valid"] += 1
        Brief.model_validate(outcome.model_dump())  # what was accepted is a brief, all through


def test_a_thousand_fuzzed_briefs_are_each_valid_or_a_clean_error(tmp_path: Path) -> None:
    runs = {"documents": 0, "valid": 0, "refused": 0}

    @settings(max_examples=1000, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
    @given(documents())
    def fuzz(document: tuple[str, bytes]) -> None:
        check_document(tmp_path, document, runs)

    fuzz()
    # Hypothesis stops early only when it runs out of distinct documents: it did fuzz 1000, some accepted.
    assert runs["documents"] >= 1000, runs
    assert runs["valid"] > 0 and runs["refused"] > 0, runs
