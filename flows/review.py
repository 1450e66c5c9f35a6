"""The review gate: the campaign waits in Prefect, round after round, until a person has decided every story.

A run that a worker took from a deployment is suspended (its process ends and frees the worker; on resume the
campaign runs again from its start, every step cached, and each round's suspend hands back the answer already
given, as its key has fired). A run in-process (`cutroom run`) cannot be suspended, so it pauses and waits.
Either way the form is typed, so the Prefect UI shows it, and `cutroom review` sends the same answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from itertools import count

from prefect import get_client, get_run_logger
from prefect.flow_runs import apause_flow_run, asuspend_flow_run
from prefect.input.run_input import RunInput
from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL
from pydantic import BaseModel

from cutroom.assets import Asset
from cutroom.brief import Brief, Review
from cutroom.manifest import StoryResult, StoryStatus
from cutroom.notify import Event, Notice, notify
from cutroom.plan import Plan, Story
from cutroom.prefect_server import shared_server
from cutroom.review import directed, review_form, sorted_answers
from cutroom.settings import settings
from cutroom.storage import S3Storage, Storage, open_storage
from flows.story import Until

#: What each review looks at: a story's keyframe before video, the whole story before publish.
REVIEWED_UNTIL: dict[Review, Until] = {Review.before_video: "keyframe", Review.before_publish: "end"}

#: How often a paused in-process run asks the server whether it was resumed (one light read).
PAUSE_POLL_S = 2

#: make_stories with everything but how far to go and what the review made of each story.
MakeStories = Callable[..., Awaitable[list[StoryResult]]]


async def reviewed(plan: Plan, brief: Brief, make: MakeStories, out: str) -> dict[str, Story | StoryResult]:
    """Each story as far as the brief's review looks, asked about round after round until every one is approved
    or dropped; a rejected one is made again with its reviewers' notes as direction, then asked again.

    What each story comes to: before video, an approved story as directed (to be made to its end); before
    publish, its result; a dropped or failed story, its result."""
    if not shared_server():
        raise RuntimeError(
            "a review needs a Prefect server that stays up to be answered on: set PREFECT_API_URL "
            "(see `cutroom server`)"
        )
    until = REVIEWED_UNTIL[brief.review]
    notes: dict[str, list[str]] = {s.id: [] for s in plan.stories}
    settled: dict[str, StoryResult] = {}  # dropped, failed or over budget: never asked again
    approved: dict[str, StoryResult] = {}
    for round_no in count(1):
        todo = {i: directed(plan.story(i), n) for i, n in notes.items() if i not in settled | approved}
        made = await make(until=until, verdicts={**todo, **settled, **approved})
        asked = {r.story_id: r for r in made if r.story_id in todo and r.status is StoryStatus.complete}
        settled |= {r.story_id: r for r in made if r.story_id in todo and r.story_id not in asked}
        if not asked:
            break
        answers = sorted_answers(await ask(brief, out, asked, until, round_no))
        approved |= {i: asked[i] for i in answers.approved}
        settled |= {i: dropped(asked[i], note) for i, note in answers.dropped.items()}
        for story_id, note in answers.rejected.items():
            notes[story_id].append(note)
    if until == "keyframe":
        return {**settled, **{i: directed(plan.story(i), notes[i]) for i in approved}}
    return {**settled, **approved}


def dropped(result: StoryResult, note: str) -> StoryResult:
    why = f"dropped at review: {note}" if note else "dropped at review"
    return StoryResult(story_id=result.story_id, status=StoryStatus.dropped, error=why)


async def ask(
    brief: Brief, out: str, asked: dict[str, StoryResult], until: Until, round_no: int
) -> BaseModel:
    """One review round's answers: the run suspends where it can, else pauses, until they are given."""
    key = f"review-{until}-{round_no}"
    what = "keyframe" if until == "keyframe" else "story"
    storage = open_storage(out)
    shown = {story_id: look_at(result, storage) for story_id, result in asked.items()}
    form = RunInput.subclass_from_base_model_type(
        review_form(f"Review{round_no}", shown, _help(what))
    ).with_initial_data(description=_description(brief, shown, what, round_no))
    async with get_client() as client:
        run = await client.read_flow_run(flow_run.get_id())
    timeout = int(settings().review_wait_h * 3600)
    if key not in (run.empirical_policy.pause_keys or set()):  # a round answered before a resume asks no one
        await notify(
            Notice(
                event=Event.review_waiting,
                campaign_id=brief.campaign_id,
                flow_run_id=str(run.id),
                todo=f"{len(asked)} {what}(ies) of {brief.campaign_id} wait for review: "
                f"`cutroom review {brief.campaign_id}`, or the form on {_run_page(str(run.id))}",
            )
        )
    get_run_logger().info("waiting for a review of %d %s(s), round %d", len(asked), what, round_no)
    if run.deployment_id is not None and run.parent_task_run_id is None:
        return await asuspend_flow_run(wait_for_input=form, key=key, timeout=timeout)
    return await apause_flow_run(wait_for_input=form, key=key, timeout=timeout, poll_interval=PAUSE_POLL_S)


def look_at(result: StoryResult, storage: Storage) -> str:
    """What a reviewer opens for a story: its keyframe and first clip, with the keyframe's score."""
    keyframe = result.keyframe
    score = f"score {keyframe.score.total:.0f}" if keyframe and keyframe.score else "not scored"
    shown = [f"keyframe {link(keyframe, storage)} ({score})"] if keyframe else []
    if result.clips:
        shown.append(f"first clip {link(result.clips[0], storage)}")
    return "; ".join(shown) or "nothing made"


def link(asset: Asset, storage: Storage) -> str:
    """A link a reviewer's browser opens: on S3 a presigned one (a bucket is rarely public), else the file."""
    if isinstance(storage, S3Storage):
        return storage.presigned_url(storage.key_of(asset.uri), settings().link_expiry_s)
    return asset.uri


def _help(what: str) -> str:
    if what == "keyframe":
        return (
            "Per story: approve (its clips are made), reject with a note (the keyframe is made again with the "
            "note as direction, then asked again), or drop (left out). Left empty: asked again."
        )
    return (
        "Per story: approve (it goes into the reels), reject with a note (made again with the note as "
        "direction, then asked again), or drop (left out of the reels). Left empty: asked again."
    )


def _description(brief: Brief, shown: dict[str, str], what: str, round_no: int) -> str:
    lines = [f"**{brief.campaign}**: review round {round_no}, each story's {what}. {_help(what)}", ""]
    lines += [f"- `{story_id}`: {look}" for story_id, look in shown.items()]
    return "\n".join(lines)


def _run_page(run_id: str) -> str:
    ui = PREFECT_UI_URL.value()
    return f"{ui}/runs/flow-run/{run_id}" if ui else f"flow run {run_id}"
