"""Cutroom's benchmarks: `python -m bench [--quick] [--only P3,P5]`.

Each benchmark is its own module `bench/p<N>_<what>.py` exposing `ID`, `TITLE` and `run(quick) -> list[Row]`;
the runner (bench/__main__.py) collects whichever exist. Every figure is measured beside its baseline in the
same run and reported as a ratio, because the machines are noisy.
"""
