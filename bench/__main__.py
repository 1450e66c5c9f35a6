"""`python -m bench [--quick] [--only P3,P5]`: run the benchmarks that exist, print and record their figures."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time

import bench
from bench.harness import MODULE_NAME, Result, describe, failed_row, machine, now, write
from cutroom.malloc import tune_malloc


def discover() -> dict[str, str]:
    """Benchmark ID (P3) → module name (bench.p3_polling), in ID order."""
    found = {}
    for info in pkgutil.iter_modules(bench.__path__):
        if match := MODULE_NAME.fullmatch(info.name):
            found[int(match[1])] = info.name
    return {f"P{n}": f"bench.{found[n]}" for n in sorted(found)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="smaller configurations (≈ 10 minutes in all on 2 cores)"
    )
    parser.add_argument("--only", default="", help="comma-separated benchmark IDs, e.g. P3,P5")
    args = parser.parse_args(argv)
    # Malloc as the `cutroom` command sets it for itself and all it starts (cutroom/malloc.py), here for Cutroom's
    # code the benchmarks call in their own process (P5's assembly) or start without the command (P9's studio),
    # and for every baseline beside it: one allocator for both sides of each ratio.
    tune_malloc()

    available = discover()
    wanted = [i.strip().upper() for i in args.only.split(",") if i.strip()] or list(available)
    if unknown := [i for i in wanted if i not in available]:
        parser.error(f"no benchmark {', '.join(unknown)} (have: {', '.join(available)})")

    facts = {**machine(), "started": now()}
    began = time.perf_counter()
    results, failed = [], False
    for bench_id in wanted:
        module = importlib.import_module(available[bench_id])
        print(f"{bench_id} {module.TITLE}", flush=True)
        start = time.perf_counter()
        try:
            rows = module.run(quick=args.quick)
        except Exception as exc:  # one broken benchmark must not lose the others' figures
            print(f"  {bench_id} failed: {exc}", flush=True)
            rows = [failed_row(exc)]
        failed = failed or any(row.failed for row in rows)
        results.append(Result(bench_id, module.TITLE, time.perf_counter() - start, rows))
        for row in rows:
            print(describe(row), flush=True)
    facts.update(finished=now(), seconds=round(time.perf_counter() - began, 1))
    for path in write(results, facts, args.quick, complete=wanted == list(available)):
        print(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
