"""The story flow in-process: the refinement loop, and a story whose provider refuses it."""

from __future__ import annotations

import asyncio

import pytest

from cutroom.brief import parse_brief
from cutroom.capabilities import Capability
from cutroom.manifest import StoryStatus
from providers import registry
from providers.cards import ModelCard
from providers.declarations import Vendor
from providers.errors import ErrorKind, ProviderError
from providers.local.planner import LocalPlanner
from providers.protocol import Output
from providers.sync import SyncGenerator

BRIEF = {
    "campaign": "Loop Test",
    "brand": {"name": "Tern", "palette": ["#102A43", "#F0B429", "#FFFFFF"]},
    "goal": "sell sea kayak tours",
    "audience": "weekend adventurers",
    "channels": ["linkedin"],
    "stories": 2,
}


@pytest.fixture
def run_story(prefect_server, tmp_path):
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from flows.story import story_flow

    def run(**brief_changes):
        brief = parse_brief({**BRIEF, **brief_changes})
        story = LocalPlanner().plan(brief).stories[1]  # a still design: the loop without clips
        lineup = registry.lineup(brief.providers)
        with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(tmp_path / "results")}):
            return asyncio.run(story_flow(story, brief, lineup, str(tmp_path / "out")))

    return run


def test_loop_stops_as_soon_as_the_target_is_met(run_story):
    result = run_story(quality_target=1)
    assert result.status is StoryStatus.complete
    assert len(result.candidates) == 1 and result.keyframe == result.candidates[0]


def test_loop_honours_max_iterations_and_keeps_the_best(run_story):
    result = run_story(quality_target=100, max_iterations=3)
    assert len(result.candidates) == 3
    assert [c.iteration for c in result.candidates] == [1, 2, 3]
    totals = [c.score.total for c in result.candidates]
    assert result.keyframe.score.total == max(totals)
    prompts = [c.prompt for c in result.candidates]
    assert len(set(prompts)) == 3 and all(p.startswith(prompts[0]) for p in prompts)
    assert [c.parent for c in result.candidates[1:]] == [c.sha256 for c in result.candidates[:-1]]


def test_refinement_raises_the_score(run_story):
    result = run_story(quality_target=85, max_iterations=5)
    assert result.keyframe.score.total >= 85
    assert result.keyframe.score.total >= result.candidates[0].score.total


class Refuses(SyncGenerator):
    """A video provider that refuses every prompt, as a vendor's input moderation would."""

    name = "refuses"
    capability = Capability.video
    model = "refuses-1"
    asked: list[str] = []

    def render(self, spec) -> Output:
        self.asked.append(spec.prompt)
        raise ProviderError(ErrorKind.moderation_input, "prompt refused by policy", provider=self.name)


def test_a_refused_story_fails_alone_and_says_where(prefect_server, tmp_path, request):
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from flows.campaign import campaign

    refuses = Vendor(
        name="refuses", title="Refuses", billable=False, adapters={Capability.video: "tests:Refuses"},
        models=(ModelCard(provider="refuses", model="refuses-1", capability=Capability.video,
                          inputs=("keyframe", "first_frame")),),
    )  # fmt: skip
    registry.register(refuses, {Capability.video: Refuses})
    request.addfinalizer(lambda: registry.unregister("refuses"))  # the provider lives for this test only
    brief = parse_brief(
        {
            **BRIEF,
            "channels": ["tiktok", "linkedin"],
            "stories": 4,
            "providers": {"video": ["refuses"]},
            "quality_target": 50,
        }
    )
    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(tmp_path / "results")}):
        manifest = asyncio.run(campaign(brief, str(tmp_path / "out")))
    by_id = {s.story_id: s for s in manifest.stories}
    moving = [s for s in manifest.plan.stories if s.shots]
    still = [s for s in manifest.plan.stories if not s.shots]
    assert moving and still
    for story in moving:
        # Refused, the prompt was rephrased once (never sent to another vendor); refused again, it waits for a
        # person: the story is left for review, not failed.
        assert by_id[story.id].status is StoryStatus.needs_review
        assert by_id[story.id].error.startswith(
            "clips left for review: refuses refused it twice (moderation_input): prompt refused by policy"
        )
        first = story.shots[0].prompt
        assert first in Refuses.asked and f"{first}, family-friendly, safe for work" in Refuses.asked
    for story in still:
        assert by_id[story.id].status is StoryStatus.complete
    assert manifest.status == "partial"
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[manifest.run_id])
            )
        )
    states = {run.name: run.state.type.value for run in runs}
    assert states == {s.id: ("FAILED" if s.shots else "COMPLETED") for s in manifest.plan.stories}
    assert manifest.exports == []  # only the failed stories had clips: nothing is cut from them
    assert (tmp_path / "out" / "campaigns" / "loop-test" / "index.html").is_file()


def test_an_avatar_story_is_presented_by_its_keyframe_speaking_its_voice_and_rendered_in_the_brand_template(
    prefect_server, tmp_path
):
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    from cutroom.plan import StoryType
    from flows.story import story_flow

    brief = parse_brief({**BRIEF, "quality_target": 1, "brand": {**BRIEF["brand"], "template": "promo-16x9"}})
    planned = LocalPlanner().plan(brief).stories[0]
    story = planned.model_copy(update={"type": StoryType.avatar, "shots": planned.shots[:1]})
    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: str(tmp_path / "results")}):
        result = asyncio.run(story_flow(story, brief, registry.lineup({}), str(tmp_path / "out")))
    assert result.status is StoryStatus.complete, result.error
    (presenter,) = result.clips
    assert presenter.kind.value == "avatar" and presenter.parent == result.keyframe.sha256
    assert presenter.duration_s == pytest.approx(result.voice.duration_s, abs=0.2)
    assert result.render is not None and result.render.kind.value == "template"
    assert result.render.duration_s == pytest.approx(result.voice.duration_s, abs=0.2)
