"""P6: upload throughput through Cutroom's S3Storage.put_file against raw boto3 upload_file.

Both go to a real S3 server on loopback (SeaweedFS, started here) with the same TransferConfig and the same
SHA-256 checksum the server verifies; the baseline is a default boto3 client. The ratio is Cutroom's own cost:
its content hash, the HEAD that makes a repeated put free, its client settings and how it feeds boto3. Every
upload gets a fresh key (no idempotent skip).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import uuid
from pathlib import Path

import boto3

from bench.harness import Row, Timing, ratio, timed
from cutroom.storage import MiB, S3Storage
from simulator.s3 import serve_s3

TITLE = "S3 upload throughput"
MIN_RATIO = 0.9
TARGET = f"≥ {MIN_RATIO:g}× raw boto3 throughput"
CONTENT_TYPE = "video/mp4"


def run(quick: bool) -> list[Row]:
    files, size = (8, 32 * MiB) if quick else (10, 64 * MiB)
    with tempfile.TemporaryDirectory(prefix="cutroom-bench-p6-") as tmp, serve_s3() as server:
        work = Path(tmp)
        storage = S3Storage(f"s3://{server.bucket}/bench", cache_dir=work / "cache")
        raw = boto3.session.Session().client("s3")
        extra = {"ContentType": CONTENT_TYPE, "ChecksumAlgorithm": "SHA256"}

        def upload(variant: str, path: Path) -> None:
            key = f"{variant}/{uuid.uuid4().hex}.mp4"
            if variant == "cutroom":
                storage.put_file(key, path, CONTENT_TYPE)
            else:
                raw.upload_file(
                    str(path),
                    server.bucket,
                    storage.object_key(key),
                    ExtraArgs=extra,
                    Config=storage.transfer_config,
                )

        timings: dict[str, list[Timing]] = {"cutroom": [], "boto3": []}
        for n in range(files):
            path = work / f"upload{n}.bin"
            path.write_bytes(os.urandom(size))
            if n == 0:  # untimed: connection pools, credentials and endpoint resolution warm up
                for variant in timings:
                    upload(variant, path)
            # Alternate who goes first, so neither always meets a fresher server.
            for variant in ("cutroom", "boto3") if n % 2 == 0 else ("boto3", "cutroom"):
                with timed() as timing:
                    upload(variant, path)
                timings[variant].append(timing)
            path.unlink()
    # Medians, and the ratio of each file's two back-to-back uploads: a neighbour's burst on the machine
    # slows both of a pair, and one stalled upload does not decide the result.
    ours, theirs = (_median(timings[v], size) for v in ("cutroom", "boto3"))
    pairs = zip(timings["cutroom"], timings["boto3"], strict=True)
    throughput = statistics.median(raw.wall_s / cutroom.wall_s for cutroom, raw in pairs)
    return [
        Row(
            f"{files} × {size // MiB} MiB files (median upload)",
            ours,
            {"boto3 upload_file": theirs},
            {"throughput (file by file)": throughput, "cpu": ratio(ours["cpu s"], theirs["cpu s"])},
            TARGET,
            throughput >= MIN_RATIO,
        )
    ]


def _median(timings: list[Timing], size: int) -> dict[str, float]:
    return {
        "MB/s": size / 1e6 / statistics.median(t.wall_s for t in timings),
        "cpu s": statistics.median(t.cpu_s for t in timings),
    }
