"""Luma Dream Machine as the `lumaai` 1.21 SDK calls it: generations, credits, concepts, and media on a fake CDN.

Jobs run queued → dreaming → completed | failed on the wall clock; outputs are real media from our offline
renderers, made on the first download and cached. Edits (modify, reframe, upscale, audio) render from their
source (an image modify, a still of its prompt in the source's frame); a job with a callback_url gets each
state change POSTed to it from a background task.
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
from simulator.core import Fault, Simulator

VENDOR = "luma"
PREFIX = "/luma/dream-machine/v1"

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
            assets[job.kind] = f"{base}{PREFIX}/_media/{job.id}.{job.extension}"
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
        async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_S) as http:
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
        _, marker, tail = url.partition(f"{PREFIX}/_media/")
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
    combined.include_router(api)
    combined.include_router(cdn)
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
