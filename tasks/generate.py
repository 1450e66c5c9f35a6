"""Generate one asset on a provider and store it: the single paid step, cached on its spec."""

from __future__ import annotations

import asyncio

from prefect import task
from prefect.runtime import flow_run

from cutroom.assets import Asset, AssetSpec
from cutroom.storage import asset_key, open_storage, sha256_bytes
from providers import registry
from providers.base import Capability, Output, run_job
from tasks.policy import key_on, local_slots, transient_only


def _render(spec: AssetSpec) -> Output:
    generator = registry.provider(Capability(spec.kind.value), spec.provider)
    if spec.provider == "local":
        with local_slots():
            return run_job(generator, spec)
    return run_job(generator, spec)


@task(
    name="generate",
    task_run_name="{spec.kind}-{story_id}-i{iteration}",
    # Only a submit that never reached the vendor lands here (run_job waits out the rest): retry generously.
    retries=4,
    retry_delay_seconds=[2, 5, 10, 20],
    retry_condition_fn=transient_only,
    cache_key_fn=key_on("spec", "out", "campaign_id", "story_id", "iteration", "parent"),
    persist_result=True,
    tags=["generate"],
)
async def generate(
    spec: AssetSpec,
    out: str,
    campaign_id: str,
    story_id: str,
    iteration: int = 1,
    parent: str | None = None,
) -> Asset:
    output = await asyncio.to_thread(_render, spec)
    digest = sha256_bytes(output.data)
    storage = open_storage(out)
    key = asset_key(campaign_id, story_id, spec.kind, digest, output.mime)
    uri = storage.uri(key) if storage.exists(key) else storage.put_bytes(key, output.data, output.mime)
    return Asset(
        spec_key=spec.key(),
        kind=spec.kind,
        provider=spec.provider,
        model=spec.model,
        prompt=spec.prompt,
        params=spec.model_dump(
            mode="json", exclude={"kind", "provider", "model", "prompt"}, exclude_defaults=True
        ),
        uri=uri,
        sha256=digest,
        mime=output.mime,
        width=output.width,
        height=output.height,
        duration_s=output.duration_s,
        cost_usd=output.cost_usd,
        story_id=story_id,
        iteration=iteration,
        parent=parent,
        words=output.words,
        run_id=flow_run.root_flow_run_id,
        job_id=output.job_id,
        source_url=output.source_url,
    )
