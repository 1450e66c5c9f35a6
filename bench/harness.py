"""What every benchmark shares: its result rows, timing, percentiles, and the results files."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutroom.media import ffmpeg_exe

RESULTS = Path(__file__).parent / "results"
#: A benchmark module is named p<N>_<what>.py; its ID is P<N>.
MODULE_NAME = re.compile(r"p(\d+)_\w+")


@dataclass
class Row:
    """One measured subject: Cutroom's figures beside each baseline's, the ratios, and the target."""

    subject: str
    figures: dict[str, float]
    baselines: dict[str, dict[str, float]]
    ratios: dict[str, float | None]
    target: str
    met: bool
    failed: bool = False


def failed_row(exc: Exception) -> Row:
    """A measurement that could not be made, said in one line (the console shows the whole error)."""
    reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    return Row(
        subject=f"failed: {reason}", figures={}, baselines={}, ratios={}, target="", met=False, failed=True
    )


@dataclass
class Result:
    id: str
    title: str
    seconds: float
    rows: list[Row] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return all(row.met for row in self.rows)


@dataclass
class Timing:
    wall_s: float = 0.0
    cpu_s: float = 0.0

    def __iadd__(self, other: Timing) -> Timing:
        self.wall_s += other.wall_s
        self.cpu_s += other.cpu_s
        return self


def _cpu_s() -> float:
    """CPU seconds of this process and of the children it has waited for (ffmpeg runs)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextmanager
def timed() -> Iterator[Timing]:
    """Wall and CPU time of the block, filled in when it ends."""
    timing = Timing()
    wall, cpu = time.perf_counter(), _cpu_s()
    yield timing
    timing.wall_s, timing.cpu_s = time.perf_counter() - wall, _cpu_s() - cpu


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def vendor_phase(requests: list[dict[str, Any]]) -> float:
    """From the first vendor submit to the last output download, both in the simulator's request log: the part of a
    run its vendor jobs bound, without the start-up before it or the local assembly after it."""
    return max(download_times(requests)) - min(submit_times(requests))


def submit_times(requests: list[dict[str, Any]]) -> list[float]:
    """When each vendor POST (a submit, an upload) reached the simulator, from its request log."""
    return [r["time"] for r in requests if r["method"] == "POST" and "/_sim/" not in r["path"]]


def download_times(requests: list[dict[str, Any]]) -> list[float]:
    """When each output download reached the simulator, from its request log."""
    return [r["time"] for r in requests if "/_media/" in r["path"]]


def running_times(jobs: list[dict[str, Any]], vendor: str) -> list[float]:
    """The running time of each of a vendor's jobs in the simulator's job log: from when it began (after any wait for
    the simulated vendor's own slots) to when it finished."""
    return [j["finished"] - (j.get("started") or j["created"]) for j in jobs if j["vendor"] == vendor]


def two_stage_bound(first: list[float], second: list[float], caps: tuple[int, int]) -> float:
    """A lower bound on the time to run jobs in two stages, where each item's first-stage job must end before its
    second-stage job starts (a keyframe before its clip, a voice before its presenter) and each stage runs at most
    its cap of jobs at once. No schedule can beat:
      - the busier stage: its summed job time ÷ its cap, after the shortest job that must come first or before
        the shortest that must follow, and
      - the longest chain: the shortest first-stage job, then the longest second-stage one.
    A stage with no jobs (a resumed run whose first stage was done) adds nothing.
    """
    head, tail = min(first, default=0.0), min(second, default=0.0)
    return max(head + sum(second) / caps[1], sum(first) / caps[0] + tail, head + max(second, default=0.0))


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare runs across machines."""
    version = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True).stdout
    return {
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "ffmpeg": version.split(" Copyright")[0] if version else "unknown",
    }


def number(value: float | None) -> str:
    if value is None:
        return "–"
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def figures(values: dict[str, float | None]) -> str:
    return ", ".join(f"{name} {number(value)}" for name, value in values.items())


def describe(row: Row) -> str:
    """A row as console lines."""
    lines = [
        f"  {row.subject}: {'met' if row.met else 'MISSED'} ({row.target})",
        f"    Cutroom: {figures(row.figures)}",
    ]
    lines += [f"    {name}: {figures(values)}" for name, values in row.baselines.items()]
    lines.append(f"    ratio: {figures(row.ratios)}")
    return "\n".join(lines)


def markdown(results: list[Result], facts: dict[str, Any], quick: bool) -> str:
    """The results as one markdown table, with the run's machine facts above it."""
    lines = [
        f"Run {facts['finished']} ({'quick' if quick else 'full'}, {facts['seconds']:.0f} s) on "
        f"{facts['cpu_count']} CPUs (load {facts['load_average_1m']}), Python {facts['python']}, "
        f"{facts['ffmpeg']}.",
        "",
        "| | Subject | Cutroom | Baseline | Ratio | Target | Met |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for row in result.rows:
            baselines = "<br>".join(f"{name}: {figures(values)}" for name, values in row.baselines.items())
            lines.append(
                f"| {result.id} | {row.subject} | {figures(row.figures)} | {baselines} | "
                f"{figures(row.ratios)} | {row.target} | {'yes' if row.met else '**no**'} |"
            )
    return "\n".join(lines) + "\n"


def write(results: list[Result], facts: dict[str, Any], quick: bool, complete: bool) -> list[Path]:
    """bench/results/latest.json and latest.md, each written whole before it replaces the last run's; a run of
    every benchmark also as quick.* or full.*, so the last run of each size is kept beside the latest."""
    RESULTS.mkdir(exist_ok=True)
    document = {
        "machine": facts,
        "quick": quick,
        "benchmarks": {
            r.id: {
                "title": r.title,
                "seconds": round(r.seconds, 1),
                "met": r.met,
                "rows": [asdict(x) for x in r.rows],
            }
            for r in results
        },
    }
    texts = {"json": json.dumps(document, indent=2) + "\n", "md": markdown(results, facts, quick)}
    names = ["latest", *([("quick" if quick else "full")] if complete else [])]
    paths = [RESULTS / f"{name}.{suffix}" for name in names for suffix in texts]
    for path in paths:
        part = path.with_name(f"{path.name}.tmp")
        part.write_text(texts[path.suffix[1:]])
        part.replace(path)
    return paths


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
