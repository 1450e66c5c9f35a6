"""Black Forest Labs' FLUX API (api.bfl.ai, 2025–26) as plain HTTP clients call it: there is no official SDK.

Covered: `POST /v1/{model}` for FLUX1.1 [pro], [pro] ultra, FLUX.1 [pro], [dev], Kontext [pro]/[max] and the
FLUX.2 family, answered with `{id, polling_url, cost, input_mp, output_mp}`; `GET /v1/get_result?id=` (the
polling_url) with BFL's exact status strings; `GET /v1/credits`; webhooks; the account's in-flight task cap.

Regions. `{sim}/bfl` stands for the global api.bfl.ai, `{sim}/bfl/eu` and `{sim}/bfl/us` for api.eu.bfl.ai and
api.us.bfl.ai, and `{sim}/bfl/eu1`, `{sim}/bfl/us1` for the single-cluster api.eu1/us1.bfl.ai. Every base takes
submissions; a multi-cluster base hands the task to a cluster (global alternates eu1/us1) and its polling_url
names that cluster, as BFL's global endpoint answers with e.g. `https://api.eu2.bfl.ai/v1/get_result?id=…`. Only
the owning cluster knows a task: a poll anywhere else answers HTTP 404 `{"status": "Task not found", …}`.
Samples are served from the cluster's delivery host (`{sim}/bfl/delivery-eu1/_media/…`) with an Azure-SAS-like
query; each Ready poll signs a fresh link that lives 10 minutes (capped by output_ttl_s); an expired link
answers Azure blob storage's 403 AuthenticationFailed.

Faults: moderation → `Request Moderated` (early, before generation), moderation_output → `Content Moderated`
(both with `details: {"Moderation Reasons": [...]}`), failed → `Error`, expired → every sample link is gone.
Moderated and failed tasks are not charged (help.bfl.ai). Control endpoints (under the prefix, so the frame
logs them and may fault them): `{PREFIX}/_sim/credits` (GET, POST {"credits": n}) and `{PREFIX}/_sim/limits`
(GET, POST {"concurrency": 24, "kontext_max_concurrency": 6}).

Sources: ../shared/providers/bfl.md; docs.bfl.ai (errors page, get_result OpenAPI, integration guide, regions);
BFL's skills repo (limits, endpoints, webhooks); live captures in public repos (maruel/genai recordings: 403
`Not authenticated - Invalid Authentication`, 404 `Not Found` for an unknown model, the Pending poll body, the
submit body with cost; a 2026 capture: 422 `Invalid API key format`, pydantic-v2 422 items, 404 Task not found).
Validation is pydantic v2 with FastAPI's error shape, as BFL's own server (FastAPI) answers.
Unverified (u): missing-key answer (403 here); 402 and concurrency-429 messages; output sizes for aspect-ratio
models; FLUX.2 defaults and prices; webhook body and X-BFL-Signature; `error` on an Error poll; which base
answers polls (only the owning cluster, here).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import itertools
import json
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, HttpUrl, ValidationError, field_validator, model_validator

from simulator import media
from simulator.core import Simulator, outbound_tls
from simulator.jobs import Phase, SimJob, start_job
from simulator.outputs import Hosted

VENDOR = "bfl"
PREFIX = "/bfl"
#: BFL keys are UUID4s; any well-formed v4 key is accepted, other UUIDs are unknown (403).
SIMULATOR_KEY = "5c0e7f3a-2b9d-4e61-a8f4-93d1b6c2e7a0"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)
NOT_AUTHENTICATED = "Not authenticated - Invalid Authentication"
#: Base path under PREFIX → (the host it stands for, the clusters it hands tasks to).
BASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "": ("api.bfl.ai", ("eu1", "us1")),
    "/eu": ("api.eu.bfl.ai", ("eu1",)),
    "/us": ("api.us.bfl.ai", ("us1",)),
    "/eu1": ("api.eu1.bfl.ai", ("eu1",)),
    "/us1": ("api.us1.bfl.ai", ("us1",)),
}
CLUSTERS = ("eu1", "us1")
SIGNED_URL_LIFETIME_S = 600.0
DEFAULT_CREDITS = 100_000.0
CONCURRENCY = 24
KONTEXT_MAX_CONCURRENCY = 6
MP = 1024 * 1024
STATUS = {
    Phase.queued: "Pending",
    Phase.running: "Pending",
    Phase.succeeded: "Ready",
    Phase.failed: "Error",
    Phase.moderated_input: "Request Moderated",
    Phase.moderated_output: "Content Moderated",
}
MODERATION_REASONS = {
    Phase.moderated_input: ["Sexual Content"],
    Phase.moderated_output: ["Derivative Works Filter"],
}
FAILURE = "Internal error during generation"
#: A moderated input is refused before generation starts: its task ends after this share of the latency.
INPUT_MODERATION_SHARE = 0.1


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """BFL's FastAPI error body, `{"detail": message}`, with Retry-After when there is one (as given: the frame's
    injected 429s carry its configured retry_after_s; the in-flight cap's own 429 passes whole seconds)."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _invalid(errors: list[dict[str, Any]]) -> Response:
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


# --- Request bodies, per model family (BFL's OpenAPI input schemas; unknown fields are ignored, as FastAPI does).


@functools.lru_cache(maxsize=8)  # a request's images are checked, sized and priced: decode each once
def image_input(value: str) -> tuple[int, int] | None:
    """An image input's size; None for an http(s) URL (not fetched: offline). Raises ValueError otherwise.

    BFL takes raw base64; a data URI is accepted too (u)."""
    if re.match(r"^https?://[^\s/]+", value):
        return None
    decoded = media.data_uri(value)
    if decoded is not None:
        data = decoded[1]
    else:
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("Invalid image: expected a URL or base64-encoded image data") from None
    size = media.image_size(data)
    if size is None:
        raise ValueError("Invalid image: could not decode the image data")
    return size


def ratio(text: str) -> float:
    """An aspect ratio like '16:9' within BFL's 21:9 … 9:21 range, as width / height."""
    match = re.fullmatch(r"(\d+):(\d+)", text)
    if not match or not int(match[1]) or not int(match[2]):
        raise ValueError("Aspect ratio must be in the format 'width:height', e.g. '16:9'")
    value = int(match[1]) / int(match[2])
    if not 9 / 21 - 1e-9 <= value <= 21 / 9 + 1e-9:
        raise ValueError("Aspect ratio must be between 21:9 and 9:21")
    return value


class Common(BaseModel):
    prompt: str | None = ""
    seed: int | None = None
    prompt_upsampling: bool = False
    safety_tolerance: int = Field(2, ge=0, le=6)
    output_format: Literal["jpeg", "png"] | None = "jpeg"
    webhook_url: HttpUrl | None = None  # pydantic's HttpUrl: http(s), at most 2083 characters
    webhook_secret: str | None = None

    @field_validator(
        "image_prompt", "input_image", *(f"input_image_{n}" for n in range(2, 9)), check_fields=False
    )
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None:
            image_input(value)
        return value


class Sized(Common):
    """FLUX1.1 [pro]: width and height, multiples of 32 from 256 to 1440."""

    image_prompt: str | None = None
    width: int = Field(1024, ge=256, le=1440, multiple_of=32)
    height: int = Field(768, ge=256, le=1440, multiple_of=32)


class FluxPro(Sized):
    steps: int = Field(40, ge=1, le=50)
    guidance: float = Field(2.5, ge=1.5, le=5)
    interval: float = Field(2, ge=1, le=4)


class FluxDev(Sized):
    steps: int = Field(28, ge=1, le=50)
    guidance: float = Field(3, ge=1.5, le=5)


class Ultra(Common):
    aspect_ratio: str = "16:9"
    raw: bool = False
    image_prompt: str | None = None
    image_prompt_strength: float = Field(0.1, ge=0, le=1)

    @field_validator("aspect_ratio")
    @classmethod
    def _ratio(cls, value: str) -> str:
        ratio(value)
        return value


class Kontext(Common):
    prompt: str
    aspect_ratio: str | None = None
    input_image: str | None = None
    input_image_2: str | None = None
    input_image_3: str | None = None
    input_image_4: str | None = None

    @field_validator("aspect_ratio")
    @classmethod
    def _ratio(cls, value: str | None) -> str | None:
        if value is not None:
            ratio(value)
        return value


class Flux2(Common):
    """FLUX.2: width/height multiples of 16 from 64 px, at most 4 MP; up to 8 reference images."""

    prompt: str
    safety_tolerance: int = Field(2, ge=0, le=5)
    width: int | None = Field(None, ge=64, multiple_of=16)
    height: int | None = Field(None, ge=64, multiple_of=16)
    input_image: str | None = None
    input_image_2: str | None = None
    input_image_3: str | None = None
    input_image_4: str | None = None
    input_image_5: str | None = None
    input_image_6: str | None = None
    input_image_7: str | None = None
    input_image_8: str | None = None

    @model_validator(mode="after")
    def _area(self) -> Flux2:
        if (self.width or 1024) * (self.height or 1024) > 4 * MP:
            raise ValueError("width * height must be at most 4 megapixels")
        return self


class Flux2Flex(Flux2):
    steps: int = Field(50, ge=1, le=50)
    guidance: float = Field(4.5, ge=1.5, le=10)


@dataclass(frozen=True)
class Model:
    body: type[Common]
    latency_s: float
    credits: float  # per image; for FLUX.2, for the first output megapixel
    extra_mp_credits: float = 0.0  # FLUX.2: each further output MP and each input MP (u)


MODELS = {
    "flux-pro-1.1": Model(Sized, 5.0, 4),
    "flux-pro-1.1-ultra": Model(Ultra, 10.0, 6),
    "flux-pro": Model(FluxPro, 8.0, 5),
    "flux-dev": Model(FluxDev, 5.0, 2.5),
    "flux-kontext-pro": Model(Kontext, 6.0, 4),
    "flux-kontext-max": Model(Kontext, 8.0, 8),
    "flux-2-pro": Model(Flux2, 8.0, 3, 1.5),  # 3 credits at 0.06 MP: maruel/genai capture
    "flux-2-max": Model(Flux2, 15.0, 7, 3),
    "flux-2-flex": Model(Flux2Flex, 20.0, 6, 6),
    "flux-2-klein-4b": Model(Flux2, 2.0, 1.4, 0.1),
    "flux-2-klein-9b": Model(Flux2, 3.0, 1.5, 0.2),
}


def _at_area(aspect: float, area: float, step: int) -> tuple[int, int]:
    height = math.sqrt(area / aspect)
    return max(step, round(height * aspect / step) * step), max(step, round(height / step) * step)


def output_size(body: Common) -> tuple[int, int]:
    """The size BFL renders: the asked width/height, or ~4 MP (ultra) / ~1 MP (Kontext) at the aspect (u)."""
    if isinstance(body, Sized):
        return body.width, body.height
    if isinstance(body, Ultra):
        return _at_area(ratio(body.aspect_ratio), 4 * MP, 32)
    source = image_input(body.input_image) if body.input_image else None
    if isinstance(body, Kontext):
        aspect = ratio(body.aspect_ratio) if body.aspect_ratio else (source[0] / source[1] if source else 1.0)
        return _at_area(aspect, MP, 16)
    assert isinstance(body, Flux2)
    if body.width or body.height:
        return body.width or 1024, body.height or 1024
    if source:  # FLUX.2 edits keep the first reference's size, within 4 MP (u)
        scale = min(1.0, math.sqrt(4 * MP / (source[0] * source[1])))
        return max(64, int(source[0] * scale) // 16 * 16), max(64, int(source[1] * scale) // 16 * 16)
    return 1024, 1024


def _input_mp(body: Common) -> float:
    total = 0.0
    for name in ("image_prompt", "input_image", *(f"input_image_{n}" for n in range(2, 9))):
        value = getattr(body, name, None)
        size = image_input(value) if value else None
        total += size[0] * size[1] / MP if size else 0.0
    return round(total, 2)


# --- Account and tasks.


@dataclass
class Task:
    job: SimJob
    model: str
    cluster: str
    body: Common
    width: int
    height: int
    seed: int
    signatures: itertools.count = field(default_factory=itertools.count)

    @property
    def fmt(self) -> str:
        return self.body.output_format or "jpeg"


@dataclass
class Account:
    credits: float = DEFAULT_CREDITS
    concurrency: int = CONCURRENCY
    kontext_max_concurrency: int = KONTEXT_MAX_CONCURRENCY
    tasks: dict[str, Task] = field(default_factory=dict)
    in_flight: list[Task] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _gone() -> Response:
    """What Azure blob storage answers for a SAS link past its `se=` expiry."""
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to'
        b" authenticate the request. Make sure the value of Authorization header is formed correctly including"
        b" the signature.</Message><AuthenticationErrorDetail>Signed expiry time has passed."
        b"</AuthenticationErrorDetail></Error>"
    )
    return Response(body, 403, media_type="application/xml")


def _wall(monotonic: float) -> float:
    return time.time() - (time.monotonic() - monotonic)


def router(sim: Simulator) -> APIRouter:
    account = Account()

    def forget() -> None:
        with account.lock:  # a reset starts the account afresh: no task of an earlier test holds a slot
            account.in_flight.clear()
            account.credits = DEFAULT_CREDITS  # nor has an earlier test emptied it

    sim.on_reset(forget)
    api = APIRouter()
    delivery = {cluster: Hosted(sim, f"{PREFIX}/delivery-{cluster}", gone=_gone) for cluster in CLUSTERS}
    for cluster, hosted in delivery.items():
        cdn = APIRouter()
        hosted.route(cdn)
        api.include_router(cdn, prefix=f"/delivery-{cluster}")
    rendered: dict[str, bytes] = {}
    render_lock = threading.Lock()
    round_robin = itertools.count()
    webhooks: set[asyncio.Task[None]] = set()

    def authorised(request: Request) -> Response | None:
        key = request.headers.get("x-key")
        if key is None:
            return error_response(403, NOT_AUTHENTICATED)  # (u) the missing-key answer
        if not UUID.match(key):
            return error_response(422, "Invalid API key format")
        return None if UUID4.match(key) else error_response(403, NOT_AUTHENTICATED)

    def sample_url(request: Request, task: Task) -> str:
        """A freshly signed link to the task's sample, as each Ready poll gives (10 minutes, capped by the TTL)."""
        now = time.monotonic()
        lifetime = min(SIGNED_URL_LIFETIME_S, sim.config.output_ttl_s)

        def make() -> bytes:
            with render_lock:
                if task.job.id not in rendered:
                    rendered[task.job.id] = media.still(
                        task.body.prompt or "", task.width, task.height, task.fmt
                    )
                return rendered[task.job.id]

        name = f"{task.job.id}-{next(task.signatures)}.{task.fmt}"
        # Hosted expires a file output_ttl_s after ready_at: start it earlier so the link lives `lifetime`.
        hosted = delivery[task.cluster]
        hosted.put(
            name, make, media.MIME[task.fmt], shape=(VENDOR, task.width, task.height, task.fmt),
            ready_at=now - (sim.config.output_ttl_s - lifetime), fault=task.job.fault,
        )  # fmt: skip
        expiry = datetime.now(UTC) + timedelta(seconds=lifetime)
        sas = f"se={expiry.strftime('%Y-%m-%dT%H:%M:%SZ')}&sp=r&sv=2024-11-04&sr=b&sig={secrets.token_urlsafe(32)}"
        return f"{hosted.url(request, name)}?{sas}"

    def result_body(request: Request, task: Task) -> dict[str, Any]:
        phase = task.job.phase()
        body: dict[str, Any] = {
            "id": task.job.id, "status": STATUS[phase], "result": None, "progress": None, "details": None,
            "preview": None,
        }  # fmt: skip
        if phase is Phase.running:
            body["progress"] = round(task.job.progress(), 2)
        elif phase is Phase.succeeded:
            start = _wall(task.job.created)
            body["result"] = {
                "sample": sample_url(request, task), "prompt": task.body.prompt or "", "seed": task.seed,
                "start_time": start, "end_time": start + task.job.latency, "duration": task.job.latency,
            }  # fmt: skip
        elif phase in MODERATION_REASONS:
            body["details"] = {"Moderation Reasons": MODERATION_REASONS[phase]}
        elif phase is Phase.failed:
            body["error"] = FAILURE  # (u) BFL's skills repo shows an `error` string on Error
        return body

    async def notify(request: Request, task: Task) -> None:
        """POST the outcome once to the task's webhook_url when it ends, signed when a secret is set (u)."""
        await asyncio.sleep(max(0.0, task.job.ends - time.monotonic()))
        polled = result_body(request, task)
        body = {"id": polled["id"], "status": polled["status"], "timestamp": datetime.now(UTC).isoformat()}
        if polled["result"]:
            body["result"] = {k: polled["result"][k] for k in ("sample", "prompt", "seed")}
        else:  # (u) the skills repo's failure body: an error code and a message
            code = "content_policy_violation" if polled["details"] else "generation_error"
            body.update(error=code, message=polled.get("error") or polled["status"])
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if task.body.webhook_secret:
            digest = hmac.new(task.body.webhook_secret.encode(), raw, hashlib.sha256).hexdigest()
            headers["X-BFL-Signature"] = f"sha256={digest}"
        try:
            async with httpx.AsyncClient(timeout=5.0, verify=outbound_tls()) as http:
                await http.post(str(task.body.webhook_url), content=raw, headers=headers)
        except httpx.HTTPError:
            pass  # an unreachable receiver does not change the task

    async def submit(request: Request, model: str, base: str) -> Response:
        if (refused := authorised(request)) is not None:
            return refused
        spec = MODELS.get(model)
        if spec is None:
            return error_response(404, "Not Found")
        raw = await request.body()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError as exc:
            return _invalid([{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error", "input": {},
                              "ctx": {"error": str(exc)}}])  # fmt: skip
        if payload is None:
            return _invalid([{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}])
        try:
            body = spec.body.model_validate(payload)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            return _invalid([{**e, "loc": ["body", *e["loc"]]} for e in errors])
        width, height = output_size(body)
        output_mp, input_mp = round(width * height / MP, 2), _input_mp(body)
        cost = spec.credits + spec.extra_mp_credits * (max(0.0, output_mp - 1) + input_mp)
        cost = round(cost, 2)
        with account.lock:
            now = time.monotonic()
            account.in_flight = [t for t in account.in_flight if t.job.ends > now]
            # The account-wide cap counts every in-flight task; Kontext [max] has its own, lower one as well.
            caps = [(account.in_flight, account.concurrency)]
            if model == "flux-kontext-max":
                mine = [t for t in account.in_flight if t.model == model]
                caps.append((mine, account.kontext_max_concurrency))
            for busy, limit in caps:
                if len(busy) >= limit:
                    message = f"You have reached the maximum of {limit} active tasks. Wait for one to finish."
                    return error_response(429, message, math.ceil(min(t.job.ends for t in busy) - now))
            if account.credits < cost:
                return error_response(402, "Insufficient credits. Add credits to your account to continue.")
            job = start_job(sim, VENDOR, spec.latency_s, payload)
            if _ending(job) is Phase.moderated_input:
                job.latency *= INPUT_MODERATION_SHARE  # refused before generation begins
                timing = next(t for t in reversed(sim.jobs) if t.id == job.id)
                timing.finished = timing.created + job.latency
            if _ending(job) is Phase.succeeded:  # moderated and failed tasks are not charged
                account.credits = round(account.credits - cost, 2)
            owners = BASES[base][1]
            cluster = owners[next(round_robin) % len(owners)]
            seed = body.seed if body.seed is not None else sim.random.randrange(2**32)
            task = Task(job, model, cluster, body, width, height, seed)
            account.tasks[job.id] = task
            account.in_flight.append(task)
        if body.webhook_url is not None:
            notifier = asyncio.create_task(notify(request, task))
            webhooks.add(notifier)  # the loop keeps only weak references to tasks
            notifier.add_done_callback(webhooks.discard)
        polling_url = f"{str(request.base_url).rstrip('/')}{PREFIX}/{cluster}/v1/get_result?id={job.id}"
        return JSONResponse(
            {
                "id": job.id,
                "polling_url": polling_url,
                "cost": cost,
                "input_mp": input_mp,
                "output_mp": output_mp,
            }
        )

    async def get_result(request: Request, base: str) -> Response:
        if (refused := authorised(request)) is not None:
            return refused
        task_id = request.query_params.get("id")
        if task_id is None:
            return _invalid(
                [{"type": "missing", "loc": ["query", "id"], "msg": "Field required", "input": None}]
            )
        task = account.tasks.get(task_id)
        if task is None or base != f"/{task.cluster}":  # only the owning cluster knows a task
            not_found = {"id": task_id, "status": "Task not found", "result": None, "progress": None,
                         "details": None, "preview": None}  # fmt: skip
            return JSONResponse(not_found, status_code=404)
        return JSONResponse(result_body(request, task))

    async def credits(request: Request) -> Response:
        if (refused := authorised(request)) is not None:
            return refused
        return JSONResponse({"credits": account.credits})

    for base in BASES:

        async def submit_here(request: Request, model: str, base: str = base) -> Response:
            return await submit(request, model, base)

        async def poll_here(request: Request, base: str = base) -> Response:
            return await get_result(request, base)

        name = base.strip("/") or "global"
        api.add_api_route(f"{base}/v1/get_result", poll_here, methods=["GET"], name=f"bfl_{name}_get_result")
        api.add_api_route(f"{base}/v1/credits", credits, methods=["GET"], name=f"bfl_{name}_credits")
        api.add_api_route(f"{base}/v1/{{model}}", submit_here, methods=["POST"], name=f"bfl_{name}_submit")

    @api.get("/_sim/credits")
    async def get_credits() -> dict[str, float]:
        return {"credits": account.credits}

    @api.post("/_sim/credits")
    async def set_credits(changes: dict[str, float]) -> dict[str, float]:
        account.credits = float(changes.get("credits", account.credits))
        return {"credits": account.credits}

    @api.get("/_sim/limits")
    async def get_limits() -> dict[str, int]:
        return {
            "concurrency": account.concurrency,
            "kontext_max_concurrency": account.kontext_max_concurrency,
        }

    @api.post("/_sim/limits")
    async def set_limits(changes: dict[str, int]) -> dict[str, int]:
        account.concurrency = int(changes.get("concurrency", account.concurrency))
        account.kontext_max_concurrency = int(
            changes.get("kontext_max_concurrency", account.kontext_max_concurrency)
        )
        return await get_limits()

    return api


def _ending(job: SimJob) -> Phase:
    """How a job will end, whatever its phase now."""
    return job.phase(job.ends + 1.0)
