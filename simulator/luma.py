"""Luma Dream Machine as the `lumaai` 1.21 SDK calls it: generations, credits, concepts, and media on a fake CDN.

Jobs run queued → dreaming → completed | failed on the wall clock; outputs are real media from our offline
renderers, made on the first download and cached.
"""

from __future__ import annotations

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

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, InputRef
from providers.base import ProviderError
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

    def asset_url(request: Request, job: Job) -> str:
        return f"{str(request.base_url).rstrip('/')}{PREFIX}/_media/{job.id}.{job.extension}"

    def view(request: Request, job: Job) -> dict[str, Any]:
        state = job.state(time.monotonic())
        assets: dict[str, str | None] = {"video": None, "image": None, "progress_video": None}
        if state == "completed":
            assets[job.kind] = asset_url(request, job)
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

    def start(kind: str, body: dict[str, Any]) -> Job:
        model = body["model"]
        job = Job(
            id=str(uuid.uuid4()),
            kind=kind,
            model=model,
            request={**body, "generation_type": kind},
            created=time.monotonic(),
            latency=sim.latency(MEAN_LATENCY_S[model]),
            fault=sim.draw(Fault.failed, Fault.moderation, Fault.expired),
        )
        jobs[job.id] = job
        return job

    def check_ref(name: str, ref: Any) -> None:
        if not isinstance(ref, dict) or ref.get("type") not in ("image", "generation"):
            raise LumaError(400, f"keyframes.{name}: type must be 'image' or 'generation'")
        if ref["type"] == "image":
            if not str(ref.get("url", "")).startswith(("http://", "https://")):
                raise LumaError(400, f"keyframes.{name}.url must be an http(s) URL")
            return
        source = jobs.get(str(ref.get("id")))
        if source is None:
            raise LumaError(400, f"keyframes.{name}: generation {ref.get('id')} not found")
        if source.state(time.monotonic()) != "completed":
            raise LumaError(400, f"keyframes.{name}: generation {source.id} is not completed")

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
        keyframes = body.get("keyframes") or {}
        for name, ref in keyframes.items():
            if name not in ("frame0", "frame1"):
                raise LumaError(400, f"unknown keyframe {name!r}: use frame0 or frame1")
            check_ref(name, ref)
        if not body.get("prompt") and not keyframes:
            raise LumaError(400, "prompt is required without keyframes")
        return view(request, start("video", body))

    api.post("/generations/video")(create_video)
    # SDK ≤1.10 and the curl docs create here; same body.
    api.post("/generations")(create_video)

    @api.post("/generations/image")
    async def create_image(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        check_common(body, IMAGE_MODELS)
        if body.get("format", "jpg") not in ("jpg", "png"):
            raise LumaError(400, "format must be 'jpg' or 'png'")
        for name in ("image_ref", "style_ref"):
            refs = body.get(name, [])
            if not isinstance(refs, list) or not all(isinstance(r, dict) and r.get("url") for r in refs):
                raise LumaError(400, f"{name} must be a list of {{url, weight}}")
        if "modify_image_ref" in body and not (body["modify_image_ref"] or {}).get("url"):
            raise LumaError(400, "modify_image_ref needs a url")
        if not body.get("prompt"):
            raise LumaError(400, "prompt is required")
        return view(request, start("image", body))

    @api.get("/generations/concepts/list")
    async def concepts() -> list[str]:
        return list(CONCEPTS)

    @api.get("/generations/{generation_id}")
    async def get_generation(generation_id: str, request: Request) -> dict[str, Any]:
        job = jobs.get(generation_id)
        if job is None:
            raise LumaError(404, "Generation not found")
        return view(request, job)

    @api.get("/generations")
    async def list_generations(request: Request, limit: int = 10, offset: int = 0) -> dict[str, Any]:
        ordered = sorted(jobs.values(), key=lambda j: j.created, reverse=True)
        page = ordered[offset : offset + limit]
        return {
            "generations": [view(request, j) for j in page],
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
        with job.lock:
            if job.media is None:
                job.media = render(job, jobs)
        mime = {"mp4": "video/mp4", "png": "image/png", "jpg": "image/jpeg"}[job.extension]
        return Response(job.media, media_type=mime)

    combined = APIRouter()
    combined.include_router(api)
    combined.include_router(cdn)
    return combined


def render(job: Job, jobs: dict[str, Job]) -> bytes:
    """Real media for a finished job from the offline renderers; a keyframe is drawn from its prompt."""
    width, height = _frame_size(job.request.get("aspect_ratio", "16:9"))
    prompt = job.request.get("prompt") or ""
    if job.kind == "image":
        png = _still(prompt, width, height)
        if job.extension == "png":
            return png
        buffer = io.BytesIO()
        Image.open(io.BytesIO(png)).convert("RGB").save(buffer, format="JPEG", quality=90)
        return buffer.getvalue()
    frame0 = (job.request.get("keyframes") or {}).get("frame0") or {}
    source = jobs.get(frame0.get("id", "")) if frame0.get("type") == "generation" else None
    # A continuation starts from what the earlier generation showed; otherwise from this prompt.
    still_prompt = (source.request.get("prompt") if source else None) or prompt or "keyframe"
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
            duration_s=DURATIONS[job.request.get("duration", "5s")],
            inputs=(InputRef(role="keyframe", uri=keyframe.as_uri(), sha256=""),),
        )
        try:
            return LocalAnimatic().render(spec).data
        except ProviderError as exc:
            raise RuntimeError(f"simulator could not render {job.id}: {exc}") from exc


def _still(prompt: str, width: int, height: int) -> bytes:
    spec = AssetSpec(
        kind=AssetKind.image, provider=VENDOR, model="photon", prompt=prompt, width=width, height=height
    )
    return LocalImage().render(spec).data
