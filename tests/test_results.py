"""Task results on S3 (CampaignResults), as Prefect reads and writes them from the event loop the stories share."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from cutroom import stopping
from tasks.results import CampaignResults

#: The longest the other stories of the process may wait for the loop meanwhile.
LOOP_STALL_S = 0.5


def test_a_result_write_waits_out_an_s3_restart_while_the_other_stories_go_on(s3):
    results = CampaignResults(location=f"s3://{s3.bucket}/results-{uuid.uuid4().hex[:8]}")
    stalls: list[float] = []

    async def a_story_meanwhile(write: asyncio.Future[str]) -> None:
        last = time.monotonic()
        while not write.done():
            await asyncio.sleep(0.05)
            now = time.monotonic()
            stalls.append(now - last - 0.05)
            last = now

    async def write_during_a_restart() -> bytes:
        s3.stop()
        threading.Timer(1.0, s3.start).start()  # back a second later, as a restarted server is
        began = time.monotonic()
        write = asyncio.ensure_future(results.awrite_path("story-1/keyframe", b"a step's result"))
        await a_story_meanwhile(write)
        await write
        assert time.monotonic() - began > 1.0, "the write did not meet the endpoint away"
        return await results.aread_path("story-1/keyframe")

    assert asyncio.run(write_during_a_restart()) == b"a step's result"
    assert max(stalls) < LOOP_STALL_S


def test_a_stop_ends_a_result_write_waiting_on_an_absent_endpoint(s3):
    results = CampaignResults(location=f"s3://{s3.bucket}/results-{uuid.uuid4().hex[:8]}")
    s3.stop()
    try:
        threading.Timer(0.5, stopping.request, args=("stopped by SIGTERM",)).start()
        began = time.monotonic()
        with pytest.raises(stopping.Stopped):
            asyncio.run(results.awrite_path("story-1/keyframe", b"a step's result"))
        assert time.monotonic() - began < 10.0
    finally:
        stopping.reset()
        s3.start()
