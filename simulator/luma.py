"""Luma Dream Machine as the `lumaai` 1.21 SDK calls it: generations, credits, concepts, and media on a fake CDN;
and, under its own mount (/luma/agents/v1), the Luma Agents API as `luma-agents` 0.5 calls it for ray-3.2 video.

Jobs run queued → dreaming → completed | failed on the wall clock; outputs are real media from our offline
renderers, made on the first download and cached. Edits (modify, reframe, upscale, audio) render from their
source (an image modify, a still of its prompt in the source's frame); a job with a callback_url gets each
state change POSTed to it from a background task.

The Agents API (luma.md section B, the SDK's types) has its own keys (`luma-api-…`), its own schema (`POST
/generations` → 201, `type` + a `video` object of options and frames as ImageRefs), its own states (queued →
processing → completed | failed with a `failure_code`) and presigned outputs that expire after an hour. Its error
body is FastAPI's `{"detail": …}` too, so the transport faults answer alike on both mounts.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, InputRef
from cutroom.media import MediaError, run_ffmpeg
from providers.local.image import LocalImage
from providers.local.video import LocalAnimatic
from simulator.core import Fault, Simulator, outbound_tls
from simulator.jobs import Phase, SimJob, start_job
from simulator.media import clip, data_uri, image_size
from simulator.outputs import Hosted

VENDOR = "luma"
PREFIX = "/luma"
#: Each API's mount under PREFIX: Dream Machine (lumaai) and Agents (luma-agents).
DREAM_MACHINE = "/dream-machine/v1"
AGENTS = "/agents/v1"

VIDEO_MODELS = ("ray-2", "ray-flash-2")
IMAGE_MODELS = ("photon-1", "photon-flash-1")
ASPECTS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
DURATIONS = {"5s": 5.0, "9s": 9.0}
RESOLUTIONS = ("540p", "720p", "1080p", "4k")
#: Mean running time per model before latency_scale, from luma.md's observed wall-clock times.
MEAN_LATENCY_S = {"photon-flash-1": 10.0, "photon-1": 20.0, "ray-flash-2": 60.0, "ray-2": 180.0}
#: Share of a job's latency spent queued before it starts dreaming.
QUEUED_SHARE = 0.1
#: Stand-in media is rendered small (right aspect, real codec) so tests stay fast.
RENDER_SHORT_SIDE = 360
FPS = 24
CREDIT_BALANCE_CENTS = 10_000.0
CONCEPTS = ("dolly_zoom", "handheld", "orbit_left", "orbit_right", "crane_up", "push_in", "pull_out")
#: The one moderation reason seen in the wild (luma.md); failed jobs get a generic reason.
MODERATION_REASON = "Advanced moderation failed"
FAILURE_REASON = "Job failed: internal error while generating"
VALID_KEY_PREFIX = "luma-"
MODIFY_MODES = tuple(f"{kind}_{n}" for kind in ("adhere", "flex", "reimagine") for n in (1, 2, 3))
#: Integer crop/placement fields both reframe bodies accept.
REFRAME_INTS = (
    "grid_position_x",
    "grid_position_y",
    "resized_width",
    "resized_height",
    "x_start",
    "x_end",
    "y_start",
    "y_end",
)
#: luma.md: each callback POST has a 5 s timeout and is tried up to 3 times, 100 ms apart, until a 200.
CALLBACK_TIMEOUT_S = 5.0
CALLBACK_ATTEMPTS = 3
CALLBACK_PAUSE_S = 0.1
#: Upscaled stand-ins are 1.5x the usual render, enough to prove the output grew without slowing tests.
UPSCALE_FACTOR = 1.5
#: Most images in image_ref (docs.lumalabs.ai: "up to 4 images as references") and per character identity
#: ((u) ComfyUI's Luma node limit).
MAX_IMAGE_REFS = 4
MAX_CHARACTER_IMAGES = 4
#: Job.operation of an image made with modify_image_ref (its generation_type stays "image").
MODIFY_IMAGE = "modify_image"


def error_response(status: int, message: str, retry_after: float | None) -> Response:
    """Luma's FastAPI-style error body, `{"detail": …}`, with Retry-After when given."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


class LumaError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


class LumaRoute(APIRoute):
    """Answers a LumaError raised by a route or its auth dependency in Luma's body shape, per router."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LumaError as exc:
                return error_response(exc.status, exc.message, None)

        return guarded


@dataclass
class Job:
    id: str
    kind: str  # "video" | "image"
    model: str
    request: dict[str, Any]
    created: float
    latency: float
    fault: Fault | None
    #: The edit's generation_type (modify_video, reframe_image, upscale_video, add_audio) or MODIFY_IMAGE;
    #: None for a new one.
    operation: str | None = None
    #: The generation this one works on or chains from, when the simulator knows it.
    source: Job | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    media: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self, now: float) -> str:
        elapsed = now - self.created
        if elapsed < QUEUED_SHARE * self.latency:
            return "queued"
        if elapsed < self.latency:
            return "dreaming"
        return "failed" if self.fault in (Fault.failed, Fault.moderation) else "completed"

    @property
    def extension(self) -> str:
        return "mp4" if self.kind == "video" else self.request.get("format", "jpg")


def _frame_size(aspect: str) -> tuple[int, int]:
    """Even width and height at RENDER_SHORT_SIDE for an aspect like '16:9'."""
    a, b = (int(x) for x in aspect.split(":"))
    long_side = round(RENDER_SHORT_SIDE * max(a, b) / min(a, b) / 2) * 2
    return (long_side, RENDER_SHORT_SIDE) if a >= b else (RENDER_SHORT_SIDE, long_side)


def router(sim: Simulator) -> APIRouter:
    jobs: dict[str, Job] = {}

    def authorised(request: Request) -> None:
        header = request.headers.get("authorization")
        if not header:
            raise LumaError(401, "Not authenticated")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.startswith(VALID_KEY_PREFIX):
            raise LumaError(401, "Invalid API key")

    api = APIRouter(dependencies=[Depends(authorised)], route_class=LumaRoute)
    cdn = APIRouter()

    tasks: set[asyncio.Task[None]] = set()

    def view(base: str, job: Job) -> dict[str, Any]:
        state = job.state(time.monotonic())
        assets: dict[str, str | None] = {"video": None, "image": None, "progress_video": None}
        if state == "completed":
            assets[job.kind] = f"{base}{PREFIX}{DREAM_MACHINE}/_media/{job.id}.{job.extension}"
        reason = None
        if state == "failed":
            reason = MODERATION_REASON if job.fault is Fault.moderation else FAILURE_REASON
        return {
            "id": job.id,
            "generation_type": job.kind,
            "state": state,
            "failure_reason": reason,
            "created_at": job.created_at,
            "model": job.model,
            "assets": assets,
            "request": job.request,
        }

    async def notify(base: str, job: Job, url: str) -> None:
        """POST the generation to its callback_url at each state change, best effort, as Luma does."""
        reported: str | None = None
        async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_S, verify=outbound_tls()) as http:
            while jobs.get(job.id) is job:  # a deleted generation stops reporting
                body = view(base, job)
                if body["state"] != reported:
                    reported = body["state"]
                    await deliver(http, url, body)
                    if reported in ("completed", "failed"):
                        return
                await asyncio.sleep(0.02)

    async def deliver(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> None:
        for attempt in range(CALLBACK_ATTEMPTS):
            if attempt:
                await asyncio.sleep(CALLBACK_PAUSE_S)
            try:
                if (await http.post(url, json=body)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # an unreachable receiver is its own problem; the job goes on

    def start(
        request: Request,
        kind: str,
        body: dict[str, Any],
        *,
        source: Job | None = None,
        operation: str | None = None,
    ) -> dict[str, Any]:
        """Create the job, start its callbacks, and answer with its Generation; `operation` names an edit
        whose generation_type does not (an image modify)."""
        model = body.get("model") or (source.model if source else "")
        generation_type = body.get("generation_type")
        job = Job(
            id=str(uuid.uuid4()),
            kind=kind,
            model=model,
            request={**body, "generation_type": generation_type or kind},
            created=time.monotonic(),
            latency=sim.latency(MEAN_LATENCY_S[model]),
            fault=sim.draw(Fault.failed, Fault.moderation, Fault.expired),
            operation=operation or (None if generation_type in (None, kind) else generation_type),
            source=source,
        )
        jobs[job.id] = job
        # job.created is monotonic; the timing log is on the request log's wall clock.
        created = time.time() - (time.monotonic() - job.created)
        sim.record_job(VENDOR, job.id, created, created + job.latency)
        base = str(request.base_url).rstrip("/")
        if url := body.get("callback_url"):
            task = asyncio.create_task(notify(base, job, url))
            tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(tasks.discard)
        return view(base, job)

    def check_ref(name: str, ref: Any) -> Job | None:
        """A keyframe reference; a generation one must be finished, and is returned as the source."""
        if not isinstance(ref, dict) or ref.get("type") not in ("image", "generation"):
            raise LumaError(400, f"keyframes.{name}: type must be 'image' or 'generation'")
        if ref["type"] == "image":
            if not str(ref.get("url", "")).startswith(("http://", "https://")):
                raise LumaError(400, f"keyframes.{name}.url must be an http(s) URL")
            return None
        source = jobs.get(str(ref.get("id")))
        if source is None:
            raise LumaError(400, f"keyframes.{name}: generation {ref.get('id')} not found")
        if source.state(time.monotonic()) != "completed":
            raise LumaError(400, f"keyframes.{name}: generation {source.id} is not completed")
        return source

    def check_media(body: dict[str, Any], name: str) -> Job | None:
        """`media`/`first_frame` is `{url}`; a link to our own CDN names the generation it came from."""
        url = body.get(name)
        url = url.get("url") if isinstance(url, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise LumaError(400, f"{name}.url must be an http(s) URL")
        _, marker, tail = url.partition(f"{PREFIX}{DREAM_MACHINE}/_media/")
        return jobs.get(tail.rsplit(".", 1)[0]) if marker else None

    def check_weighted(name: str, ref: Any) -> None:
        """An image reference `{url, weight?}`: a link Luma can fetch, and a weight from 0 to 1."""
        if not isinstance(ref, dict) or not str(ref.get("url", "")).startswith(("http://", "https://")):
            raise LumaError(400, f"{name}.url must be an http(s) URL")
        weight = ref.get("weight", 0.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
            raise LumaError(400, f"{name}.weight must be a number from 0 to 1")

    def check_references(body: dict[str, Any]) -> None:
        """Photon's image_ref / style_ref lists, and character_ref's identities of image links."""
        for name in ("image_ref", "style_ref"):
            refs = body.get(name, [])
            if not isinstance(refs, list):
                raise LumaError(400, f"{name} must be a list of {{url, weight}}")
            for i, ref in enumerate(refs):
                check_weighted(f"{name}[{i}]", ref)
        if len(body.get("image_ref", [])) > MAX_IMAGE_REFS:
            raise LumaError(400, f"image_ref takes at most {MAX_IMAGE_REFS} images")
        identities = body.get("character_ref", {})
        if not isinstance(identities, dict):
            raise LumaError(400, "character_ref must be an object of identities like identity0")
        for name, identity in identities.items():
            images = identity.get("images") if isinstance(identity, dict) else None
            if not isinstance(images, list) or not 0 < len(images) <= MAX_CHARACTER_IMAGES:
                raise LumaError(
                    400, f"character_ref.{name}.images must list 1 to {MAX_CHARACTER_IMAGES} URLs"
                )
            if not all(str(url).startswith(("http://", "https://")) for url in images):
                raise LumaError(400, f"character_ref.{name}.images must be http(s) URLs")

    def check_edit(body: dict[str, Any], generation_type: str, models: tuple[str, ...]) -> Job | None:
        """What modify and both reframes share: their generation_type, model, media and optional first_frame."""
        if body.get("generation_type") != generation_type:
            raise LumaError(400, f"generation_type must be '{generation_type}'")
        check_common(body, models)
        if "first_frame" in body:
            check_media(body, "first_frame")
        for name in REFRAME_INTS:
            if name in body and type(body[name]) is not int:
                raise LumaError(400, f"{name} must be an integer")
        return check_media(body, "media")

    def finished_video(generation_id: str) -> Job:
        """The generation an upscale or audio call acts on: it must exist, be a video, and be done."""
        source = jobs.get(generation_id)
        if source is None:
            raise LumaError(404, "Generation not found")
        if source.kind != "video" or source.state(time.monotonic()) != "completed":
            raise LumaError(400, f"generation {generation_id} is not a completed video")
        return source

    async def json_body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise LumaError(400, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise LumaError(400, "Request body must be a JSON object")
        return body

    def check_common(body: dict[str, Any], models: tuple[str, ...]) -> None:
        if body.get("model") not in models:
            raise LumaError(400, f"model must be one of {', '.join(models)}, got {body.get('model')!r}")
        aspect = body.get("aspect_ratio", "16:9")
        if aspect not in ASPECTS:
            raise LumaError(400, f"aspect_ratio must be one of {', '.join(ASPECTS)}, got {aspect!r}")

    async def create_video(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        check_common(body, VIDEO_MODELS)
        if body.get("duration", "5s") not in DURATIONS:
            raise LumaError(400, f"duration must be one of {', '.join(DURATIONS)}, got {body['duration']!r}")
        if body.get("resolution", "720p") not in RESOLUTIONS:
            raise LumaError(400, f"resolution must be one of {', '.join(RESOLUTIONS)}")
        if not isinstance(body.get("loop", False), bool):
            raise LumaError(400, "loop must be a boolean")
        keyframes = body.get("keyframes") or {}
        if not isinstance(keyframes, dict):
            raise LumaError(400, "keyframes must be an object with frame0 and/or frame1")
        sources = []
        for name, ref in keyframes.items():
            if name not in ("frame0", "frame1"):
                raise LumaError(400, f"unknown keyframe {name!r}: use frame0 or frame1")
            sources.append(check_ref(name, ref))
        if not body.get("prompt") and not keyframes:
            raise LumaError(400, "prompt is required without keyframes")
        # An extend (frame0) or reverse extend (frame1) looks like the generation it continues.
        return start(request, "video", body, source=next((s for s in sources if s), None))

    api.post("/generations/video")(create_video)
    # SDK ≤1.10 and the curl docs create here; same body.
    api.post("/generations")(create_video)

    @api.post("/generations/image")
    async def create_image(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        check_common(body, IMAGE_MODELS)
        if body.get("format", "jpg") not in ("jpg", "png"):
            raise LumaError(400, "format must be 'jpg' or 'png'")
        check_references(body)
        if not body.get("prompt"):
            raise LumaError(400, "prompt is required")
        if "modify_image_ref" not in body:
            return start(request, "image", body)
        check_weighted("modify_image_ref", body["modify_image_ref"])
        # (u) A modify keeps its source's frame unless the request sets aspect_ratio (ComfyUI's Luma node docs).
        source = check_media(body, "modify_image_ref")
        return start(request, "image", body, source=source, operation=MODIFY_IMAGE)

    @api.post("/generations/video/modify")
    async def modify_video(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        source = check_edit(body, "modify_video", VIDEO_MODELS)
        if body.get("mode") not in MODIFY_MODES:
            raise LumaError(400, f"mode must be one of {', '.join(MODIFY_MODES)}, got {body.get('mode')!r}")
        return start(request, "video", body, source=source)

    @api.post("/generations/video/reframe")
    async def reframe_video(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        if "aspect_ratio" not in body:
            raise LumaError(400, "aspect_ratio is required")
        return start(request, "video", body, source=check_edit(body, "reframe_video", VIDEO_MODELS))

    @api.post("/generations/image/reframe")
    async def reframe_image(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        if "aspect_ratio" not in body:
            raise LumaError(400, "aspect_ratio is required")
        if body.get("format", "jpg") not in ("jpg", "png"):
            raise LumaError(400, "format must be 'jpg' or 'png'")
        return start(request, "image", body, source=check_edit(body, "reframe_image", IMAGE_MODELS))

    @api.post("/generations/{generation_id}/upscale")
    async def upscale(generation_id: str, request: Request) -> dict[str, Any]:
        body = await json_body(request)
        if body.setdefault("generation_type", "upscale_video") != "upscale_video":
            raise LumaError(400, "generation_type must be 'upscale_video'")
        if body.get("resolution", "1080p") not in RESOLUTIONS:
            raise LumaError(400, f"resolution must be one of {', '.join(RESOLUTIONS)}")
        return start(request, "video", body, source=finished_video(generation_id))

    @api.post("/generations/{generation_id}/audio")
    async def add_audio(generation_id: str, request: Request) -> dict[str, Any]:
        body = await json_body(request)
        if body.setdefault("generation_type", "add_audio") != "add_audio":
            raise LumaError(400, "generation_type must be 'add_audio'")
        for name in ("prompt", "negative_prompt"):
            if not isinstance(body.get(name, ""), str):
                raise LumaError(400, f"{name} must be a string")
        return start(request, "video", body, source=finished_video(generation_id))

    @api.get("/generations/concepts/list")
    async def concepts() -> list[str]:
        return list(CONCEPTS)

    @api.get("/generations/{generation_id}")
    async def get_generation(generation_id: str, request: Request) -> dict[str, Any]:
        job = jobs.get(generation_id)
        if job is None:
            raise LumaError(404, "Generation not found")
        return view(str(request.base_url).rstrip("/"), job)

    @api.get("/generations")
    async def list_generations(request: Request, limit: int = 10, offset: int = 0) -> dict[str, Any]:
        ordered = sorted(jobs.values(), key=lambda j: j.created, reverse=True)
        page = ordered[offset : offset + limit]
        return {
            "generations": [view(str(request.base_url).rstrip("/"), j) for j in page],
            "count": len(page),
            "has_more": offset + limit < len(ordered),
            "limit": limit,
            "offset": offset,
        }

    @api.delete("/generations/{generation_id}")
    async def delete_generation(generation_id: str) -> Response:
        if jobs.pop(generation_id, None) is None:
            raise LumaError(404, "Generation not found")
        return Response(status_code=204)

    @api.get("/credits")
    async def credits() -> dict[str, float]:
        return {"credit_balance": CREDIT_BALANCE_CENTS}

    @api.get("/ping")
    async def ping() -> dict[str, str]:
        return {"message": "pong"}

    @cdn.get("/_media/{name}")
    def media(name: str) -> Response:
        # Sync route: FastAPI runs it in a worker thread, so rendering never blocks the event loop.
        job = jobs.get(name.rsplit(".", 1)[0])
        now = time.monotonic()
        if job is None or job.state(now) != "completed":
            return Response(b"<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml")
        if job.fault is Fault.expired or now - (job.created + job.latency) > sim.config.output_ttl_s:
            return Response(b"<Error><Code>AccessDenied</Code></Error>", 403, media_type="application/xml")
        media = sim.media(_shape(job), lambda: produce(job))
        mime = {"mp4": "video/mp4", "png": "image/png", "jpg": "image/jpeg"}[job.extension]
        return Response(media, media_type=mime)

    combined = APIRouter()
    combined.include_router(api, prefix=DREAM_MACHINE)
    combined.include_router(cdn, prefix=DREAM_MACHINE)
    combined.include_router(agents_router(sim), prefix=AGENTS)
    return combined


def _shape(job: Job) -> tuple[str, ...]:
    """What decides the look of a job's output apart from its prompt (for the simulator's stock media)."""
    settings = ("aspect_ratio", "duration", "resolution")
    return (
        VENDOR,
        job.kind,
        job.model,
        job.extension,
        str(job.operation),
        *(_setting(job, k, "") for k in settings),
    )


def produce(job: Job) -> bytes:
    """The job's media, rendered once; an edit renders its source first."""
    with job.lock:
        if job.media is None:
            job.media = render(job)
        return job.media


def _setting(job: Job, key: str, default: str) -> str:
    """A request setting; an edit inherits what it does not set from the generation it works on."""
    current: Job | None = job
    while current is not None:
        if value := current.request.get(key):
            return value
        current = current.source if current.operation else None
    return default


def render(job: Job) -> bytes:
    """Real media for a finished job from the offline renderers; a keyframe is drawn from its prompt."""
    if job.operation in ("upscale_video", "add_audio") and job.source is not None:
        return _post_process(produce(job.source), job.operation)
    width, height = _frame_size(_setting(job, "aspect_ratio", "16:9"))
    prompt = _setting(job, "prompt", "")
    if job.kind == "image":
        png = _still(prompt, width, height)
        if job.extension == "png":
            return png
        buffer = io.BytesIO()
        Image.open(io.BytesIO(png)).convert("RGB").save(buffer, format="JPEG", quality=90)
        return buffer.getvalue()
    # A continuation or edit starts from what the earlier generation showed; otherwise from this prompt.
    still_prompt = (_setting(job.source, "prompt", "") if job.source else "") or prompt or "keyframe"
    with tempfile.TemporaryDirectory(prefix="luma-sim-") as tmp:
        keyframe = Path(tmp) / "frame0.png"
        keyframe.write_bytes(_still(still_prompt, width, height))
        spec = AssetSpec(
            kind=AssetKind.video,
            provider=VENDOR,
            model=job.model,
            prompt=prompt,
            width=width,
            height=height,
            fps=FPS,
            duration_s=DURATIONS[_setting(job, "duration", "5s")],
            inputs=(InputRef(role="keyframe", uri=keyframe.as_uri(), sha256=""),),
        )
        return LocalAnimatic().render(spec).data


def _post_process(video: bytes, operation: str) -> bytes:
    """An upscale is the source scaled up; added audio is the source with a tone muxed in."""
    with tempfile.TemporaryDirectory(prefix="luma-sim-") as tmp:
        source, out = Path(tmp) / "source.mp4", Path(tmp) / "out.mp4"
        source.write_bytes(video)
        if operation == "upscale_video":
            scale = f"scale=trunc(iw*{UPSCALE_FACTOR}/2)*2:trunc(ih*{UPSCALE_FACTOR}/2)*2"
            args = [
                "-i",
                str(source),
                "-vf",
                scale,
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-an",
                str(out),
            ]
        else:
            tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
            args = ["-i", str(source), *tone, "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac"]
            args += ["-shortest", str(out)]
        try:
            run_ffmpeg(args, what=f"simulating {operation}")
        except MediaError as exc:
            raise RuntimeError(f"simulator could not {operation}: {exc}") from exc
        return out.read_bytes()


def _still(prompt: str, width: int, height: int) -> bytes:
    spec = AssetSpec(
        kind=AssetKind.image, provider=VENDOR, model="photon", prompt=prompt, width=width, height=height
    )
    return LocalImage().render(spec).data


# -- the Luma Agents API (ray-3.2) --------------------------------------------------------------------------------

AGENTS_KEY_PREFIX = "luma-api-"
AGENTS_MODELS = ("uni-1", "uni-1-max", "ray-3.2")
AGENTS_TYPES = ("image", "image_edit", "video", "video_edit", "video_reframe", "layering")
#: luma.md B: the aspect ratios a ray-3.2 video takes.
AGENTS_VIDEO_ASPECTS = ("9:16", "3:4", "1:1", "4:3", "16:9", "21:9")
AGENTS_DURATIONS = {"5s": 5.0, "10s": 10.0}
AGENTS_RESOLUTIONS = ("360p", "540p", "720p", "1080p")
AGENTS_VIDEO_OPTIONS = (
    "duration", "edit", "end_frame", "exr_export", "hdr", "keyframe_indexes", "keyframes", "loop", "resolution",
    "source_position", "start_frame",
)  # fmt: skip
AGENTS_BODY = (
    "prompt", "aspect_ratio", "image_ref", "layering", "model", "output_format", "source", "style", "type",
    "user_id", "video", "web_search",
)  # fmt: skip
IMAGE_REF_FIELDS = ("url", "data", "generation_id", "file_id")
#: (u) ray-3.2's running time for a 5 s clip; Luma publishes none.
AGENTS_LATENCY_S = 120.0
#: Presigned output links expire after an hour (the SDK's GenerationOutput).
AGENTS_OUTPUT_TTL_S = 3600.0
AGENTS_STATES = {Phase.queued: "queued", Phase.running: "processing", Phase.succeeded: "completed"}


class AgentsError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


@dataclass
class AgentsGeneration:
    job: SimJob
    body: dict[str, Any]
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


def agents_router(sim: Simulator) -> APIRouter:
    generations: dict[str, AgentsGeneration] = {}
    sim.on_reset(generations.clear)
    api = APIRouter()
    cdn = Hosted(sim, PREFIX + AGENTS)

    def authorised(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.startswith(AGENTS_KEY_PREFIX):
            raise AgentsError(401, "Invalid or missing API key")

    def image_ref(name: str, ref: Any) -> bytes | None:
        """An ImageRef: exactly one source; inline data must be an image; a generation a finished video."""
        if not isinstance(ref, dict) or sum(ref.get(k) is not None for k in IMAGE_REF_FIELDS) != 1:
            raise AgentsError(400, f"{name}: provide exactly one of url, data, generation_id, file_id")
        if ref.get("data") is not None:
            if not ref.get("media_type"):
                raise AgentsError(400, f"{name}: media_type is required with data")
            decoded = data_uri(f"data:{ref['media_type']};base64,{ref['data']}")
            if decoded is None or image_size(decoded[1]) is None:
                raise AgentsError(422, f"{name}: data is not a decodable image")
            return decoded[1]
        if ref.get("generation_id") is not None:
            source = generations.get(str(ref["generation_id"]))
            if source is None or source.job.phase() is not Phase.succeeded:
                raise AgentsError(422, f"{name}: generation {ref['generation_id']} is not a completed video")
        if ref.get("file_id") is not None:
            raise AgentsError(422, f"{name}: file {ref['file_id']} not found")
        return None

    def check(body: Any) -> bytes | None:
        """The create body as the Agents API validates it; the start frame's bytes when inline."""
        if not isinstance(body, dict):
            raise AgentsError(400, "body must be a JSON object")
        if unknown := sorted(set(body) - set(AGENTS_BODY)):
            raise AgentsError(400, f"unknown fields: {', '.join(unknown)}")
        if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
            raise AgentsError(400, "prompt is required")
        if body.get("model", "uni-1") not in AGENTS_MODELS:
            raise AgentsError(400, f"model must be one of {', '.join(AGENTS_MODELS)}")
        if body.get("type", "image") not in AGENTS_TYPES:
            raise AgentsError(400, f"type must be one of {', '.join(AGENTS_TYPES)}")
        if body.get("type") != "video" or body.get("model") != "ray-3.2":
            raise AgentsError(422, "the simulator makes type=video with model ray-3.2 only")
        if body.get("aspect_ratio", "16:9") not in AGENTS_VIDEO_ASPECTS:
            raise AgentsError(422, f"aspect_ratio for video must be one of {', '.join(AGENTS_VIDEO_ASPECTS)}")
        video = body.get("video") or {}
        if not isinstance(video, dict) or (unknown := sorted(set(video) - set(AGENTS_VIDEO_OPTIONS))):
            raise AgentsError(400, f"video: unknown fields {unknown if isinstance(video, dict) else video}")
        if video.get("duration", "5s") not in AGENTS_DURATIONS:
            raise AgentsError(400, "video.duration must be 5s or 10s")
        if video.get("resolution", "720p") not in AGENTS_RESOLUTIONS:
            raise AgentsError(400, f"video.resolution must be one of {', '.join(AGENTS_RESOLUTIONS)}")
        if video.get("loop") and (video.get("duration") == "10s" or video.get("hdr")):
            raise AgentsError(422, "video.loop is not supported with duration 10s or hdr")
        if video.get("keyframes") and (
            video.get("start_frame") or video.get("end_frame") or video.get("loop")
        ):
            raise AgentsError(422, "video.keyframes cannot be combined with start_frame, end_frame or loop")
        if video.get("end_frame") is not None:
            image_ref("video.end_frame", video["end_frame"])
        return image_ref("video.start_frame", video["start_frame"]) if video.get("start_frame") else None

    def view(request: Request, generation: AgentsGeneration) -> dict[str, Any]:
        phase = generation.job.phase()
        body = generation.body
        shown: dict[str, Any] = {"id": generation.job.id, "created_at": generation.created_at,
                                 "model": body["model"], "type": body["type"]}  # fmt: skip
        if phase in AGENTS_STATES:
            shown["state"] = AGENTS_STATES[phase]
        else:
            code = "generation_failed" if phase is Phase.failed else "content_moderated"
            reason = {
                Phase.failed: "Generation failed: internal error",
                Phase.moderated_input: "The prompt or input image was flagged by content moderation",
                Phase.moderated_output: "The generated output was flagged by content moderation",
            }[phase]
            shown |= {"state": "failed", "failure_code": code, "failure_reason": reason}
        if phase is Phase.succeeded:
            shown["output"] = [{"type": "video", "url": cdn.url(request, f"{generation.job.id}.mp4")}]
        return shown

    @api.post("/generations", status_code=201)
    async def create(request: Request) -> Response:
        try:
            authorised(request)
            try:
                body = await request.json()
            except ValueError:
                raise AgentsError(400, "body is not valid JSON") from None
            start = check(body)
        except AgentsError as exc:
            return error_response(exc.status, exc.message, None)
        job = start_job(sim, VENDOR, AGENTS_LATENCY_S, body)
        generation = AgentsGeneration(job, body)
        generations[job.id] = generation
        width, height = _frame_size(body.get("aspect_ratio", "16:9"))
        seconds = AGENTS_DURATIONS[(body.get("video") or {}).get("duration", "5s")]
        cdn.put(f"{job.id}.mp4", lambda: clip(body["prompt"], width, height, seconds, FPS, start), "video/mp4",
                ready_at=job.ends, fault=job.fault, lifetime_s=AGENTS_OUTPUT_TTL_S)  # fmt: skip
        return JSONResponse(view(request, generation), status_code=201)

    @api.get("/generations/{generation_id}")
    async def get(generation_id: str, request: Request) -> Response:
        try:
            authorised(request)
        except AgentsError as exc:
            return error_response(exc.status, exc.message, None)
        generation = generations.get(generation_id)
        if generation is None:
            return error_response(404, "Generation not found", None)
        return JSONResponse(view(request, generation))

    cdn.route(api)
    return api
