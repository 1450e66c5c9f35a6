"""`python -m bench.plain BRIEF OUT [--sequential]`: the campaign's work without Prefect, for P1 and P2.

The hand-written alternatives a user would otherwise pick, on Cutroom's own undecorated steps — the same
adapters, vendor caps, ledger, storage, judge and reel assembly — so the difference is the orchestration:
- concurrent: every story at once in plain asyncio, a thread per blocking step (a competent asyncio script);
- sequential: story by story, step by step, like the seeds' loops.
Plain scripts keep no run history and have no retries, caching or UI: that is what Prefect's cost buys.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cutroom.assets import Asset, AssetSpec, InputRef
from cutroom.brief import Brief, load_brief
from cutroom.capabilities import Capability
from cutroom.exports import reel_plans
from cutroom.lineup import Lineup
from cutroom.manifest import StoryResult, StoryStatus
from cutroom.plan import Story
from cutroom.settings import settings
from cutroom.specs import clip_spec, keyframe_spec, voice_spec
from providers import registry
from tasks.assemble import _assemble
from tasks.generate import _make
from tasks.judge import score_asset

#: Threads for blocking steps; a vendor job holds one while it waits, so the pool is sized for waiting.
THREADS = 64


class Campaign:
    def __init__(self, brief: Brief, out: str, sequential: bool):
        self.brief, self.out, self.sequential = brief, out, sequential
        self.lineup: Lineup = registry.lineup(brief.providers)

    async def make(self, spec: AssetSpec, story: Story) -> Asset:
        """Generate, store and journal one asset, then score it (what Cutroom's story flow does per asset)."""
        asset = await asyncio.to_thread(
            _make, spec, self.out, self.brief.campaign_id, story.id, 1, None, self.brief.budget_usd, None
        )
        asset.score = await asyncio.to_thread(
            score_asset,
            asset,
            spec,
            self.brief.brand,
            self.lineup[Capability.judge].entry,
            self.out,
            self.brief.campaign_id,
        )
        return asset

    async def story(self, story: Story) -> StoryResult:
        """Keyframe ‖ voice-over, then a clip per shot from the keyframe (the bench plan has no chained shots)."""
        brief = self.brief
        image, video, speech = (
            self.lineup[c] for c in (Capability.image, Capability.video, Capability.speech)
        )
        keyframe = keyframe_spec(story, brief, image.name, image.model, story.keyframe_prompt)
        steps = [self.make(keyframe, story)]
        if story.voice_over:
            steps.append(self.make(voice_spec(story, speech.name, speech.model), story))
        made = await self._in_turn(steps) if self.sequential else await asyncio.gather(*steps)
        result = StoryResult(
            story_id=story.id, status=StoryStatus.complete, keyframe=made[0], candidates=[made[0]]
        )
        result.voice = made[1] if len(made) > 1 else None
        start = InputRef(role="keyframe", uri=made[0].uri, sha256=made[0].sha256, url=made[0].source_url)
        shots = [
            self.make(
                clip_spec(shot, brief, video.name, video.model, start, video.durations_s),
                story,
            )
            for shot in story.shots
        ]
        result.clips = await self._in_turn(shots) if self.sequential else await asyncio.gather(*shots)
        return result

    @staticmethod
    async def _in_turn(steps: list) -> list:
        return [await step for step in steps]

    async def run(self) -> None:
        plan = await asyncio.to_thread(
            registry.provider(Capability.planner, self.lineup[Capability.planner].name).plan, self.brief
        )
        stories = [self.story(s) for s in plan.stories]
        results = await self._in_turn(stories) if self.sequential else await asyncio.gather(*stories)
        config = settings()
        reels = [
            asyncio.to_thread(
                _assemble, reel, self.brief.brand, self.out, self.brief.campaign_id, config.crossfade_s,
                config.end_card_s,
            )
            for reel in reel_plans(self.brief, plan, results, config.crossfade_s, config.end_card_s)
        ]  # fmt: skip
        await self._in_turn(reels) if self.sequential else await asyncio.gather(*reels)


async def main(brief: Brief, out: str, sequential: bool) -> None:
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(THREADS))
    await Campaign(brief, out, sequential).run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.plain", description=__doc__)
    parser.add_argument("brief", type=Path)
    parser.add_argument("out")
    parser.add_argument("--sequential", action="store_true")
    args = parser.parse_args()
    os.environ["CUTROOM_GLOBAL_LIMITS"] = "false"  # Prefect's global slots need Prefect's API
    asyncio.run(main(load_brief(args.brief), args.out, args.sequential))
