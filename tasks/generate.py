"""Generate one asset on a provider and store it: the single paid step, cached on its spec and journaled."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prefect import task
from prefect.runtime import flow_run

from cutroom import stopping
from cutroom.assets import Asset, AssetSpec, InputRef
from cutroom.brief import Brand
from cutroom.capabilities import Capability
from cutroom.ledger import EntryState, Ledger, ledger_for
from cutroom.storage import S3Storage, Storage, asset_key, open_storage, sha256_bytes
from cutroom.uploads import uploads_kept_in
from providers import registry
from providers.errors import ErrorKind, JobFailed, ProviderError
from providers.inputs import EXPECTED, checked_file
from providers.polling import fetch_output, run_job, submit_job, wait_for_end
from providers.protocol import Generator, JobRef, Output
from tasks.judge import score_asset
from tasks.limits import vendor_slot
from tasks.policy import in_thread, key_on, local_slots, transient_only


def _reachable(spec: AssetSpec, storage: Storage, campaign_id: str) -> AssetSpec:
    """Inputs as a vendor can take them when the work is on S3: one kept on S3 as a local copy plus a presigned
    link, and a local file (a `cutroom generate --image`) put beside the campaign's media first, so a vendor that
    only fetches its inputs gets a short-lived link to it, never a public bucket."""
    if not isinstance(storage, S3Storage):
        return spec

    def reachable(ref: InputRef) -> InputRef:
        if ref.uri.startswith("s3://"):
            key = storage.key_of(ref.uri)
            return ref.model_copy(
                update={"uri": storage.local_path(key).as_uri(), "url": ref.url or storage.presigned_url(key)}
            )
        if ref.uri.startswith("file:") and ref.url is None:
            path, mime = checked_file(ref, spec.provider, EXPECTED.get(ref.role, ("image",)))
            key = f"campaigns/{campaign_id}/inputs/{ref.sha256}"
            storage.put_file(key, path, mime, metadata={"role": ref.role})
            return ref.model_copy(update={"url": storage.presigned_url(key)})
        return ref

    return spec.model_copy(update={"inputs": tuple(reachable(i) for i in spec.inputs)})


def _asset(
    spec: AssetSpec,
    output: Output,
    uri: str,
    digest: str,
    story_id: str,
    iteration: int,
    parent: str | None,
    run_id: str | None,
) -> Asset:
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
        run_id=run_id,
        job_id=output.job_id,
        continuity=registry.card_of(spec).continuity(spec),
        source_url=output.source_url,
    )


def _store(
    storage: Storage, campaign_id: str, story_id: str, spec: AssetSpec, output: Output
) -> tuple[str, str]:
    digest = sha256_bytes(output.data)
    key = asset_key(campaign_id, story_id, spec.kind, digest, output.mime)
    meta = {
        "campaign": campaign_id,
        "story": story_id,
        "provider": spec.provider,
        "model": spec.model,
        "spec": spec.key(),
        "cost-usd": f"{output.cost_usd:.4f}",
    }
    # put_bytes skips bytes already stored under their content address: no separate existence check.
    return storage.put_bytes(key, output.data, output.mime, metadata=meta), digest


def _on_vendor(
    generator: Generator,
    spec: AssetSpec,
    ready: AssetSpec,
    storage: Storage,
    campaign_id: str,
    story_id: str,
    budget_usd: float | None,
) -> tuple[Output | None, Asset | None]:
    """Run a paid job under the campaign's ledger: reuse a settled asset, re-attach to a journaled job, or
    reserve the estimate, submit, and journal the job id before the first poll.

    One of the provider's slots (in this process and across runs) is held while the job runs on the vendor,
    from before its submit until a poll sees it end, and given back before its output is downloaded: a link to
    a finished output takes none of the vendor's capacity, so the next job starts meanwhile.

    The ledger knows the job by `spec`; the vendor gets `ready`, the same spec with its inputs made reachable.
    """
    ledger = ledger_for(storage, campaign_id)
    key = spec.key()
    entry = ledger.entry(key)
    settled = entry and entry.state is EntryState.settled and entry.asset
    if settled and storage.exists(storage.key_of(entry.asset.uri)):
        return None, entry.asset
    job = None
    if entry and entry.job_id and entry.state in (EntryState.submitted, EntryState.settled):
        job = JobRef(
            provider=spec.provider, job_id=entry.job_id, spec_key=key, spec=ready, handle=entry.handle
        )
    throttle = registry.throttle(spec.provider)
    if job is not None:
        try:
            with throttle.job(), vendor_slot(spec.provider):
                wait_for_end(generator, job, first_look_s=0.0)
            return fetch_output(generator, job), None
        except ProviderError as exc:
            if not _gone(exc):
                raise  # still the vendor's job: a rerun re-attaches again
            ledger.released(key, f"re-attached job {job.job_id} is gone: {exc.detail}")
    with throttle.job(), vendor_slot(spec.provider):
        # A stopped run pays for nothing new; what it submitted already stays journaled.
        stopping.check(f"submitting {spec.kind.value} to {spec.provider}")
        ledger.reserve(spec, generator.estimate(ready), budget_usd, story_id)
        try:
            throttle.before_submit()
            job = submit_job(generator, ready)
        except stopping.Stopped:
            ledger.released(key, "stopped before it was submitted")
            raise
        except ProviderError as exc:
            ledger.released(key, f"submit refused: {exc.detail}")
            raise
        ledger.submitted(key, job.job_id, job.handle)
        with _released_if_gone(ledger, key, job):
            wait_for_end(generator, job)
    with _released_if_gone(ledger, key, job):
        return fetch_output(generator, job), None


def _gone(exc: ProviderError) -> bool:
    """Whether a job will never yield its output: it failed, or its vendor has forgotten it or its output."""
    return isinstance(exc, JobFailed) or exc.kind is ErrorKind.not_found


@contextlib.contextmanager
def _released_if_gone(ledger: Ledger, key: str, job: JobRef) -> Iterator[None]:
    """Give back the job's reservation when what runs inside finds the job gone: no output will be booked."""
    try:
        yield
    except ProviderError as exc:
        if _gone(exc):
            ledger.released(key, f"job {job.job_id} ended without output: {exc.detail}")
        raise


def _make(
    spec: AssetSpec,
    out: str,
    campaign_id: str,
    story_id: str,
    iteration: int,
    parent: str | None,
    budget_usd: float | None,
    run_id: str | None,
    force_upload: bool = False,
) -> Asset:
    storage = open_storage(out)
    generator = registry.provider(Capability(spec.kind.value), spec.provider)
    ready = _reachable(spec, storage, campaign_id)
    if not registry.billable(spec.provider):  # free and in-process: nothing to journal or re-attach to
        with local_slots() if registry.cpu_bound(spec.provider) else contextlib.nullcontext():
            output = run_job(generator, ready)
        uri, digest = _store(storage, campaign_id, story_id, spec, output)
        return _asset(spec, output, uri, digest, story_id, iteration, parent, run_id)
    # Media a vendor takes as uploads of its own (HeyGen) is sent once per storage, not on every run.
    with uploads_kept_in(storage, force=force_upload):
        output, settled = _on_vendor(generator, spec, ready, storage, campaign_id, story_id, budget_usd)
    if settled is not None:
        return settled
    uri, digest = _store(storage, campaign_id, story_id, spec, output)
    asset = _asset(spec, output, uri, digest, story_id, iteration, parent, run_id)
    ledger_for(storage, campaign_id).settled(spec.key(), output.cost_usd, asset)
    return asset


@task(
    name="generate",
    task_run_name="{spec.kind}-{story_id}-i{iteration}",
    # Only a submit that never reached the vendor lands here (the waits and downloads wait out the rest): retry
    # generously.
    retries=4,
    retry_delay_seconds=[2, 5, 10, 20],
    retry_condition_fn=transient_only,
    cache_key_fn=key_on(
        "spec", "out", "campaign_id", "story_id", "iteration", "parent", "brand", "judge", "criteria"
    ),
    persist_result=True,
)
async def generate(
    spec: AssetSpec,
    out: str,
    campaign_id: str,
    story_id: str,
    iteration: int = 1,
    parent: str | None = None,
    budget_usd: float | None = None,
    run_id: str | None = None,
    brand: Brand | None = None,
    judge: str | None = None,
    criteria: tuple[str, ...] = (),
    force_upload: bool = False,
) -> Asset:
    """Make, store and journal one asset, and score it when a judge is named; a campaign's budget, when given,
    is never passed. `criteria` are the story's acceptance criteria, for a judge that can see them;
    `force_upload` sends media to a vendor that keeps uploads (HeyGen) again instead of reusing its asset id.

    Scoring here rather than in a task of its own halves the task runs per asset (each costs Prefect ~0.1 s of
    CPU, more than a local score). A new judge or brand is a cache miss that re-scores: the ledger hands back
    the asset already paid for instead of generating it again.

    `run_id` is the campaign's run, recorded on the asset (default: this flow run). Given, it spares the three
    API round trips Prefect's `root_flow_run_id` makes for every asset of a subflow.
    """
    run_id = run_id or flow_run.get_id()
    asset = await in_thread(
        _make, spec, out, campaign_id, story_id, iteration, parent, budget_usd, run_id, force_upload
    )
    if judge is not None:
        if brand is None:
            raise ValueError("a judge scores against the brand: pass brand with judge")
        asset.score = await in_thread(
            score_asset, asset, spec, brand, judge, out, campaign_id, criteria, budget_usd
        )
    return asset
