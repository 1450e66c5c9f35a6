"""Freepik's API serving Kling image-to-video (docs.freepik.com, 2025-26), as plain HTTP clients call it: there is
no SDK.

Covered: `POST /v1/ai/image-to-video/{model}` for Kling 2.1 std/pro/master, 2, 2.5 pro, 1.6 std/pro and Elements
std/pro, answered `{"data": {"task_id", "status": "CREATED"}}`; `GET /v1/ai/image-to-video/{status path}/{id}`
at each model's own status path (2.1 std and pro share `kling-v2-1`; a task asked for at another path is not
found); webhooks on every status change; the key in `x-freepik-api-key`; 3 tasks running per key (its
account: another key's tasks are not found), a further one accepted and left CREATED until a slot frees.

Tasks run on the simulator's clock (simulator.jobs): CREATED, IN_PROGRESS, then COMPLETED with
`generated: [url]` (a real clip of the asked length, animated from the start image when the simulator can read
it, served at an expiring link) or FAILED. The start image decides the clip's shape, as Kling's does: base64 is
decoded; a link on loopback (the test S3) is fetched; any other link cannot be fetched offline, so its clip is
16:9 (u). Stand-in clips are rendered small (the right shape, a real codec) so tests stay fast.

Errors are Freepik's `{"message": …}`, a validation error adding `invalid_params: [{field, reason}]`.
Unverified (u): every message text; 401 for a missing or unknown key; 404 for an unknown task or model; a fourth
task queued rather than refused (freepik.md also reads the docs' "up to 3 concurrent requests" as a 429); 400 for a base64 image with a `data:` prefix (Kling's own rule) and for
a link that cannot be fetched; the `error` reason on a FAILED task (Freepik documents none); which models take
`image_tail` (Freepik documents it for 1.6 pro, public code sends it to 2.1 pro).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError

from simulator import media
from simulator.core import Simulator, outbound_tls
from simulator.jobs import Phase, SimJob, start_job
from simulator.media import FetchFailed, fetch_local
from simulator.outputs import Hosted

VENDOR = "freepik"
PREFIX = "/freepik"
API = "/v1/ai/image-to-video"
KEY = re.compile(r"^FPSX[0-9a-f]{32}$")


@dataclass(frozen=True)
class Model:
    status_path: str
    latency_s: float
    tail: bool = False
    elements: bool = False


MODELS = {
    "kling-v2-1-std": Model("kling-v2-1", 120.0),
    "kling-v2-1-pro": Model("kling-v2-1", 180.0, tail=True),
    "kling-v2-1-master": Model("kling-v2-1-master", 240.0),
    "kling-v2-5-pro": Model("kling-v2-5-pro", 120.0),
    "kling-v2": Model("kling-v2", 240.0),
    "kling-pro": Model("kling", 180.0, tail=True),
    "kling-std": Model("kling", 120.0),
    "kling-elements-pro": Model("kling-elements", 180.0, elements=True),
    "kling-elements-std": Model("kling-elements", 120.0, elements=True),
}
DURATIONS = ("5", "10")
ELEMENTS_ASPECTS = {"widescreen_16_9": (16, 9), "social_story_9_16": (9, 16), "square_1_1": (1, 1)}
TEXT_CHARS = 2500
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_SIDE = 300
MAX_RATIO = 2.5
IMAGE_FORMATS = ("JPEG", "PNG")
CONCURRENCY = 3
STATUS = {
    Phase.queued: "CREATED",
    Phase.running: "IN_PROGRESS",
    Phase.succeeded: "COMPLETED",
    Phase.failed: "FAILED",
    Phase.moderated_input: "FAILED",
    Phase.moderated_output: "FAILED",
}
#: (u) The reason a FAILED task carries here.
FAILURES = {
    Phase.failed: "Internal error while generating the video",
    Phase.moderated_input: "The input image or prompt did not pass content moderation",
    Phase.moderated_output: "The generated video did not pass content moderation",
}
RENDER_SHORT_SIDE = 360
FPS = 24
WEBHOOK_TIMEOUT_S = 5.0


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """Freepik's error body, `{"message": …}`, with Retry-After when there is one."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return JSONResponse({"message": message}, status_code=status, headers=headers)


class Invalid(Exception):
    """A field Freepik refuses: answered 400 with invalid_params."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason

    def response(self) -> Response:
        body = {
            "message": "Invalid request parameters",
            "invalid_params": [{"field": self.name, "reason": self.reason}],
        }
        return JSONResponse(body, status_code=400)


@dataclass
class Task:
    job: SimJob
    key: str
    model: str
    prompt: str
    duration_s: float
    width: int
    height: int
    start: bytes | None


@dataclass
class Account:
    tasks: dict[str, Task] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def frame_size(aspect: tuple[int, int]) -> tuple[int, int]:
    """Even width and height at RENDER_SHORT_SIDE for a width:height."""
    a, b = aspect
    long_side = round(RENDER_SHORT_SIDE * max(a, b) / min(a, b) / 2) * 2
    return (long_side, RENDER_SHORT_SIDE) if a >= b else (RENDER_SHORT_SIDE, long_side)


def checked_image(name: str, data: bytes) -> tuple[int, int]:
    """An input image's size, if Kling takes it: jpg or png, at most 10 MB, 300 px a side, 1:2.5 to 2.5:1."""
    if len(data) > MAX_IMAGE_BYTES:
        raise Invalid(name, "The image file size cannot exceed 10MB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            fmt, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise Invalid(name, "The image could not be decoded") from None
    if fmt not in IMAGE_FORMATS:
        raise Invalid(name, "Supported image formats are .jpg / .jpeg / .png")
    if min(width, height) < MIN_SIDE:
        raise Invalid(name, f"The image resolution should not be less than {MIN_SIDE}x{MIN_SIDE}px")
    if max(width, height) > MAX_RATIO * min(width, height):
        raise Invalid(name, "Aspect ratio should be between 1:2.5 ~ 2.5:1")
    return width, height


async def image_bytes(name: str, value: Any) -> bytes | None:
    """An image field's bytes: base64 decoded, a loopback link fetched; None for a link offline cannot reach."""
    if not isinstance(value, str) or not value:
        raise Invalid(name, "Must be a URL or a Base64-encoded image")
    if value.startswith(("http://", "https://")):
        try:
            return await fetch_local(value)
        except FetchFailed as exc:
            raise Invalid(name, f"The image URL could not be downloaded ({exc})") from None
    if value.startswith("data:"):
        raise Invalid(name, "Base64 images must not carry a data: prefix")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(name, "Must be a URL or a Base64-encoded image") from None


def check_text(body: dict[str, Any]) -> None:
    for name in ("prompt", "negative_prompt"):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > TEXT_CHARS):
            raise Invalid(name, f"Must be a string of at most {TEXT_CHARS} characters")
    cfg = body.get("cfg_scale")
    if cfg is not None and (isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= 1):
        raise Invalid("cfg_scale", "Must be a number between 0 and 1")
    webhook = body.get("webhook_url")
    if webhook is not None and (
        not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))
    ):
        raise Invalid("webhook_url", "Must be a valid URL")
    if "duration" not in body:
        raise Invalid("duration", "Field required")
    if body["duration"] not in DURATIONS:
        raise Invalid("duration", "Must be one of '5', '10'")


async def frames(model: Model, name: str, body: dict[str, Any]) -> tuple[tuple[int, int], bytes | None]:
    """The clip's width:height and its start image, from the body's image (or Elements' aspect and images)."""
    if model.elements:
        images = body.get("images")
        if not isinstance(images, list) or not 1 <= len(images) <= MAX_IMAGES:
            raise Invalid("images", f"Must be an array of 1 to {MAX_IMAGES} image URLs")
        for i, url in enumerate(images):
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise Invalid(f"images[{i}]", "Image URL (must be accessible)")
        aspect = body.get("aspect_ratio", "widescreen_16_9")
        if aspect not in ELEMENTS_ASPECTS:
            raise Invalid("aspect_ratio", f"Must be one of {', '.join(ELEMENTS_ASPECTS)}")
        start = await image_bytes("images[0]", images[0])
        if start is not None:
            checked_image("images[0]", start)
        return ELEMENTS_ASPECTS[aspect], start
    if "image_tail" in body:
        if not model.tail:
            raise Invalid(
                "image_tail", f"{name} does not take image_tail (not compatible with standard mode)"
            )
        tail = await image_bytes("image_tail", body["image_tail"])
        if tail is not None:
            checked_image("image_tail", tail)
    if "image" not in body:
        raise Invalid("image", "Field required")
    start = await image_bytes("image", body["image"])
    if start is None:
        return (16, 9), None  # (u) a link offline cannot fetch: Kling's landscape stand-in
    return checked_image("image", start), start


def router(sim: Simulator) -> APIRouter:
    account = Account()
    sim.keeps_fresh(account, Account)
    api = APIRouter()
    hosted = Hosted(sim, PREFIX)
    hosted.route(api)
    webhooks: set[asyncio.Task[None]] = set()

    def authorised(request: Request) -> Response | None:
        key = request.headers.get("x-freepik-api-key")
        if not key:
            return error_response(401, "Missing API key")
        return None if KEY.match(key) else error_response(401, "Invalid API key")

    def view(request: Request, task: Task) -> dict[str, Any]:
        phase = task.job.phase()
        body: dict[str, Any] = {"task_id": task.job.id, "status": STATUS[phase], "generated": []}
        if phase is Phase.succeeded:
            body["generated"] = [hosted.url(request, f"{task.job.id}.mp4")]
        elif phase in FAILURES:
            body["error"] = FAILURES[phase]
        return body

    async def notify(request: Request, task: Task, url: str) -> None:
        """POST the task (the GET body without `data`) to its webhook_url at each status change, best effort."""
        reported = None
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S, verify=outbound_tls()) as http:
            while True:
                body = view(request, task)
                if body["status"] != reported:
                    reported = body["status"]
                    with contextlib.suppress(httpx.HTTPError):  # an unreachable receiver changes nothing
                        await http.post(url, json=body)
                    if reported in ("COMPLETED", "FAILED"):
                        return
                await asyncio.sleep(0.02)

    @api.post(API + "/{name}")
    async def create(name: str, request: Request) -> Response:
        if (refused := authorised(request)) is not None:
            return refused
        model = MODELS.get(name)
        if model is None:
            return error_response(404, "Not found")
        try:
            body = await request.json()
        except ValueError:
            return error_response(400, "The request body is not valid JSON")
        if not isinstance(body, dict):
            return error_response(400, "The request body must be a JSON object")
        try:
            check_text(body)
            aspect, start = await frames(model, name, body)
        except Invalid as exc:
            return exc.response()
        with account.lock:
            now = time.monotonic()
            key = request.headers["x-freepik-api-key"]
            busy = sorted(t.job.ends for t in account.tasks.values() if t.key == key and t.job.ends > now)
            job = start_job(sim, VENDOR, model.latency_s, body)
            if len(busy) >= CONCURRENCY:  # (u) past 3 in flight the task waits CREATED for a free slot
                job.created = busy[len(busy) - CONCURRENCY]
                timing = next(t for t in reversed(sim.jobs) if t.id == job.id)
                timing.started = time.time() + (job.created - now)
                timing.finished = timing.started + job.latency
            width, height = frame_size(aspect)
            prompt, duration_s = str(body.get("prompt") or ""), float(body["duration"])
            task = Task(job, key, name, prompt, duration_s, width, height, start)
            account.tasks[job.id] = task
        hosted.put(
            f"{job.id}.mp4",
            lambda: media.clip(task.prompt, width, height, task.duration_s, FPS, start=task.start),
            "video/mp4",
            shape=(VENDOR, name, width, height, task.duration_s),
            ready_at=job.ends,
            fault=job.fault,
        )
        if url := body.get("webhook_url"):
            notifier = asyncio.create_task(notify(request, task, url))
            webhooks.add(notifier)  # the loop keeps only weak references to tasks
            notifier.add_done_callback(webhooks.discard)
        return JSONResponse({"data": {"task_id": job.id, "status": "CREATED"}})

    @api.get(API + "/{path}/{task_id}")
    async def status(path: str, task_id: str, request: Request) -> Response:
        if (refused := authorised(request)) is not None:
            return refused
        task = account.tasks.get(task_id)
        key = request.headers["x-freepik-api-key"]
        if task is None or task.key != key or MODELS[task.model].status_path != path:
            return error_response(404, "Not found")
        return JSONResponse({"data": view(request, task)})

    return api
