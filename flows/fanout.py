"""Stories spread over a work pool's workers: each story is its own run of the `story` deployment, or each batch
of CUTROOM_STORY_BATCH stories one run of the `stories` deployment, its stories made inside it.

With CUTROOM_STORY_POOL set, the campaign starts every story (or batch) with `run_deployment` (a subflow of the
campaign, so the UI shows the tree) and any worker of the pool takes it, on any machine that reaches the Prefect
server and the campaign's storage. Vendor caps hold across those workers as they hold across processes: every paid
job takes a leased slot of its provider's Prefect global concurrency limit (tasks/limits.py), which the
campaign creates before its first story, and a worker killed while holding one frees it when the lease ends.

A run whose worker dies stays Running on the server: Prefect's way to see it is the flow-run heartbeat
every run of a deployment sends, and an automation that marks a run Crashed once its heartbeats stop. The
campaign then starts it again, and its stories resume without paying twice: every step is cached in the
campaign's storage and every paid job is in the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from prefect import Flow, flow, get_run_logger
from prefect.automations import AutomationCore
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.context import FlowRunContext
from prefect.deployments import arun_deployment
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.workers.process import ProcessWorker

from cutroom.brief import Brief
from cutroom.lineup import Lineup
from cutroom.malloc import with_malloc_settings
from cutroom.manifest import StoryResult, StoryStatus
from cutroom.plan import Story
from cutroom.prefect_server import shared_server
from cutroom.settings import settings
from flows.story import Until, make_story, story_flow
from tasks.results import RESULTS_PREFIX, CampaignResults, block_name, save_results_block

#: The story deployment, as run_deployment names it: flow name / deployment name.
STORY_DEPLOYMENT = "story/story"
#: The deployment whose run makes a batch of stories (CUTROOM_STORY_BATCH above 1).
BATCH_DEPLOYMENT = "stories/stories"
#: Where a worker finds the code, as deployments/prefect.yaml says: each machine's own checkout.
PULL_STEPS = [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $CUTROOM_CHECKOUT }}"}}]
#: Seconds between a story run's heartbeats: the shortest Prefect 3.9.1 allows (flows.heartbeat_frequency is
#: validated ge=30, and the engine raises anything lower to MINIMUM_HEARTBEAT_INTERVAL = 30).
HEARTBEAT_S = 30
ZOMBIE_AUTOMATION = "cutroom: crash silent story runs"
#: How many times a crashed run is started again before its stories are recorded as failed.
STORY_RESTARTS = 2
#: The first and the longest pause between two looks at a story run: one cheap read each, backing off while
#: the story works (a story takes minutes on vendors; a few seconds late to see its end costs nothing).
POLL_S = (1.0, 5.0)


@flow(name="stories")
async def story_batch_flow(
    stories: list[Story], brief: Brief, lineup: Lineup, out: str, run_id: str, until: Until = "end"
) -> list[StoryResult]:
    """A batch of a campaign's stories made in one run of the pool, as the campaign's own process makes them: each
    its own story run inside this one, up to CUTROOM_STORY_CONCURRENCY at once. One process start for them all."""
    gate = asyncio.Semaphore(settings().story_concurrency)

    async def one(story: Story) -> StoryResult:
        async with gate:
            return await make_story(story, brief, lineup, out, run_id, until)

    return list(await asyncio.gather(*(one(story) for story in stories)))


def story_run_env(out: str) -> dict[str, str]:
    """A story run's environment: where it keeps Prefect results, and glibc's malloc settings (cutroom/malloc.py;
    the worker starts the run, so they go in its environment).

    Results go to the campaign's own storage, not the worker's disk.

    Through Prefect's result storage, not a file of our own: its task results are the step cache a story
    started again on another machine resumes from, and its flow result is the StoryResult the campaign reads
    back (`state.result()` follows the storage the result names: the CampaignResults block on S3, an absolute
    path in a folder). The same location cli/prefect_setup.py gives an in-process run.
    """
    if out.startswith("s3:"):
        results = {
            "PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK": f"{CampaignResults.get_block_type_slug()}/{block_name(out)}"
        }
    else:
        results = {"PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(Path(out).resolve() / RESULTS_PREFIX)}
    return with_malloc_settings(results)


async def prepare_story_pool(pool: str, out: str) -> None:
    """The pool, the `story` and `stories` deployments on it and the automation that marks their silent runs
    Crashed, made or updated, so that setting CUTROOM_STORY_POOL is all a user does (workers: `prefect worker
    start --pool`)."""
    if not shared_server():
        raise RuntimeError(
            f"CUTROOM_STORY_POOL={pool} needs a Prefect server its workers share: set PREFECT_API_URL"
        )
    context = FlowRunContext.get()
    if context and context.flow_run and context.flow_run.work_pool_name == pool:
        get_run_logger().warning(
            "the campaign runs on the story pool %s: it holds a worker slot while its stories wait for one",
            pool,
        )
    if out.startswith("s3:"):
        await save_results_block(out)
    async with get_client() as client:
        await _ensure_pool(client, pool)
        deployments = [
            await _ensure_deployment(client, pool, flow, entrypoint, what)
            for flow, entrypoint, what in (
                (story_flow, "flows/story.py:story_flow", "One story of a campaign"),
                (story_batch_flow, "flows/fanout.py:story_batch_flow", "A batch of a campaign's stories"),
            )
        ]
        await _ensure_zombie_automation(client, deployments)


async def _ensure_pool(client: PrefectClient, pool: str) -> None:
    """A process pool, as `prefect worker start --pool` would make it, unless the pool exists."""
    try:
        await client.read_work_pool(pool)
    except ObjectNotFound:
        template = ProcessWorker.get_default_base_job_template()
        with contextlib.suppress(ObjectAlreadyExists):  # a worker or another campaign made it meanwhile
            await client.create_work_pool(
                WorkPoolCreate(name=pool, type="process", base_job_template=template)
            )


async def _ensure_deployment(
    client: PrefectClient, pool: str, flow: Flow, entrypoint: str, what: str
) -> UUID:
    """The flow's deployment on the pool, named as the flow is. Prefect's create is an upsert by flow and name: a
    later campaign brings the deployment up to date."""
    flow_id = await client.create_flow_from_name(flow.name)
    return await client.create_deployment(
        flow_id=flow_id,
        name=flow.name,
        entrypoint=entrypoint,
        description=f"{what}; the campaign starts these itself when CUTROOM_STORY_POOL is set.",
        tags=["cutroom"],
        work_pool_name=pool,
        pull_steps=PULL_STEPS,
        parameter_openapi_schema=flow.parameters.model_dump_for_openapi(),
        job_variables={
            "env": {
                "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S),
                # The story's own result too (its steps persist theirs already): the campaign reads it back.
                "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
            }
        },
    )


async def _ensure_zombie_automation(client: PrefectClient, deployments: list[UUID]) -> None:
    """Prefect's zombie detection (docs: "detect zombie flows"), kept to story runs: a run of these deployments
    whose heartbeats stop for CUTROOM_STORY_SILENCE_S without a final state is set Crashed by the server."""
    silent_s = settings().story_silence_s
    automation = AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description="Marks a Cutroom story run Crashed when its worker stops sending heartbeats; the campaign "
        "then starts the story again.",
        trigger=EventTrigger(
            # From the moment a worker takes it, not only from its first beat: a machine lost while the run was
            # still starting (Pending) or before its first beat is lost all the same.
            after={"prefect.flow-run.Pending", "prefect.flow-run.Running", "prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.Running",
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            match_related={"prefect.resource.id": [f"prefect.deployment.{d}" for d in deployments]},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=silent_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {silent_s} s: its worker is gone",
            )
        ],
    )
    existing = await client.read_automations_by_name(ZOMBIE_AUTOMATION)
    if existing:
        await client.update_automation(existing[0].id, automation)
    else:
        await client.create_automation(automation)


async def run_on_pool(
    stories: list[Story], brief: Brief, lineup: Lineup, out: str, run_id: str, until: Until = "end"
) -> list[StoryResult]:
    """The stories made by a worker of the pool in one run: a `story` run for one, a `stories` run for a batch.
    A run that crashed is started again, up to STORY_RESTARTS times.

    The campaign only waits here (no worker slot of its own), reading the run's state now and then.
    """
    # A worker's working folder is its checkout, not ours: a folder is named whole.
    where = out if out.startswith("s3:") else str(Path(out).resolve())
    # Models as the schema spells them (by alias: a story's `copy`), as Prefect's own encoding does not.
    parameters = {
        **{
            k: m.model_dump(mode="json", by_alias=True) for k, m in {"brief": brief, "lineup": lineup}.items()
        },
        "out": where,
        "run_id": run_id,
        "until": until,
    }
    told = [story.model_dump(mode="json", by_alias=True) for story in stories]
    if len(stories) == 1:
        deployment, name, parameters["story"] = STORY_DEPLOYMENT, stories[0].id, told[0]
    else:
        deployment, name, parameters["stories"] = BATCH_DEPLOYMENT, f"{stories[0].id}…{stories[-1].id}", told

    def failed(error: str) -> list[StoryResult]:
        return [StoryResult(story_id=s.id, status=StoryStatus.failed, error=error) for s in stories]

    for attempt in range(STORY_RESTARTS + 1):
        try:
            run = await arun_deployment(
                deployment,
                parameters=parameters,
                flow_run_name=name,
                timeout=0,
                job_variables={"env": story_run_env(out)},
            )
        except Exception as exc:  # the server refused the run: these stories fail, the others go on
            return failed(f"story could not start: {exc}")
        run = await finished(run.id)
        if not run.state.is_crashed():
            break
        get_run_logger().warning(
            "story run %s crashed on its worker (%s)%s",
            name,
            run.state.message,
            ": starting it again" if attempt < STORY_RESTARTS else "",
        )
    if run.state.is_crashed() or run.state.is_cancelled():
        return failed(f"story {run.state.name.lower()} on its worker: {run.state.message}")
    result = await run.state.aresult(raise_on_failure=False)
    made = [result] if len(stories) == 1 else result
    if not isinstance(made, list) or not all(isinstance(r, StoryResult) for r in made):
        return failed(f"story failed: {result}")  # the run failed outside the stories' steps
    return made


async def finished(flow_run_id: UUID) -> FlowRun:
    """The run once it is in a final state; one read per look, the pause growing to POLL_S[1]."""
    pause, longest = POLL_S
    async with get_client() as client:
        while True:
            run = await client.read_flow_run(flow_run_id)
            if run.state and run.state.is_final():
                return run
            await asyncio.sleep(pause)
            pause = min(pause * 2, longest)
