"""Kling AI's official API (kling.md) on loopback: the JWT checked as Kling checks it, image2video and text2video
tasks in Kling's envelope `{code, message, request_id, data}` with its service codes, real clips at expiring
links, and callbacks.

Auth: `Authorization: Bearer <JWT>`, HS256, its `iss` an access key the account knows and its signature made with
that key's secret; a token not yet valid (`nbf`) or expired (`exp`) is refused with its own code. The frame hands
adapters one dummy key, so the simulator's account has it as both keys; `POST /kling/_sim/accounts` adds a pair
with distinct keys (so a swapped pair is caught). `POST /kling/_sim/limits` sets the concurrency (over it: 429,
code 1303) and empties the resource pack (429, code 1102).

Images: a raw base64 image is decoded and checked (jpg/png, at most 10 MB, sides of 300 px or more, aspect
1:2.5 to 2.5:1), and the clip starts from it in its shape; a link on loopback (the test S3) is fetched as Kling
fetches it; any other link is unreachable offline, so a 16:9 stand-in start is drawn (u). A refused prompt or
image (the moderation fault) is answered at create with code 1301, as Kling's risk control does; a task whose
output is refused fails with a risk-control task_status_msg (u: Kling's exact wording is unpublished).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import io
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from PIL import Image

from simulator.core import Fault, Simulator, outbound_tls
from simulator.jobs import Phase, SimJob, start_job
from simulator.media import clip, image_size
from simulator.outputs import Hosted

VENDOR = "kling"
PREFIX = "/kling"
#: The frame's dummy key (providers/kling.toml), the simulator account's access and secret key at once.
SIM_KEY = "kling-simulator-key"
DURATIONS = ("5", "10")
ASPECTS = ("16:9", "9:16", "1:1")
MODES = ("std", "pro")
MAX_TEXT = 2500
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_IMAGE_SIDE = 300
MAX_IMAGE_RATIO = 2.5
#: Stand-in clips are rendered small (right shape, real codec) so tests stay fast.
RENDER_SHORT_SIDE = 360
FPS = 24
LOOPBACK = ("127.0.0.1", "localhost", "::1")
FETCH_TIMEOUT_S = 5.0
#: (u) The failure reasons: Kling documents task_status_msg only as "e.g. triggering the content risk control".
OUTPUT_REFUSED = (
    "Failure to pass the risk control system: the generated video triggered content security review"
)
RISK_CONTROL = "Risk control triggered: the prompt or image failed content security review"
INTERNAL_FAILURE = "Internal error while generating the video, please try again"
CALLBACK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Model:
    """What a model takes, from Kling's capability map (kling.md; the map's mirror for modes and end frames)."""

    latency_s: float
    text2video: bool = True
    #: Modes in which it takes an end frame (image_tail).
    tail_modes: tuple[str, ...] = ("pro",)


MODELS = {
    "kling-v2-5-turbo": Model(120.0),
    "kling-v2-1": Model(120.0, text2video=False),
    "kling-v2-1-master": Model(300.0, tail_modes=()),
    "kling-v2-master": Model(300.0, tail_modes=()),
}


class KlingError(Exception):
    def __init__(self, status: int, code: int, message: str):
        self.status, self.code, self.message = status, code, message


def error_response(
    status: int, message: str, retry_after: float | None = None, code: int | None = None
) -> Response:
    """Kling's envelope for an error: its service code (by HTTP status when not given), message and request id."""
    code = (
        code
        if code is not None
        else {429: 1302, 503: 5001, 504: 5002}.get(status, 5000 if status >= 500 else 1200)
    )
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    body = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
    return JSONResponse(body, status_code=status, headers=headers)


def _envelope(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data})


@dataclass
class Task:
    id: str
    endpoint: str
    job: SimJob
    body: dict[str, Any]
    created_ms: int

    def status(self) -> str:
        phase = self.job.phase()
        if phase is Phase.queued:
            return "submitted"
        if phase is Phase.running:
            return "processing"
        return "succeed" if phase is Phase.succeeded else "failed"


@dataclass
class State:
    accounts: dict[str, str] = field(default_factory=lambda: {SIM_KEY: SIM_KEY})
    concurrency: int = 20
    pack_depleted: bool = False
    tasks: dict[str, Task] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _b64url_json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def check_token(header: str | None, accounts: dict[str, str], now: float) -> None:
    """The request's JWT as Kling checks it; raises KlingError with Kling's auth code."""
    if not header:
        raise KlingError(401, 1001, "Authorization is empty")
    scheme, _, token = header.partition(" ")
    parts = token.split(".")
    if scheme != "Bearer" or len(parts) != 3:
        raise KlingError(401, 1002, "Authorization is invalid")
    try:
        head, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
        signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except (ValueError, binascii.Error):
        raise KlingError(401, 1002, "Authorization is invalid") from None
    if not isinstance(head, dict) or head.get("alg") != "HS256" or not isinstance(claims, dict):
        raise KlingError(401, 1002, "Authorization is invalid")
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp, nbf)):
        raise KlingError(401, 1002, "Authorization is invalid: exp and nbf are required")
    secret = accounts.get(claims.get("iss"))  # type: ignore[arg-type]
    expected = hmac.new((secret or "").encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if secret is None or not hmac.compare_digest(expected, signature):
        raise KlingError(401, 1000, "Authentication failed")
    if now < nbf:  # type: ignore[operator]
        raise KlingError(401, 1003, "Authorization is not yet valid")
    if now >= exp:  # type: ignore[operator]
        raise KlingError(401, 1004, "Authorization has expired")


def _invalid(message: str) -> KlingError:
    return KlingError(400, 1201, message)


def read_image(value: Any, name: str, *, shaped: bool) -> bytes | None:
    """An image field's bytes (None for a link Kling cannot reach from here); KlingError when it is no usable
    jpg/png. `shaped`: the start image's aspect must be within 1:2.5 to 2.5:1."""
    if not isinstance(value, str) or not value:
        raise _invalid(f"{name} must be an image URL or Base64 string")
    if value.startswith(("http://", "https://")):
        host = urlsplit(value).hostname or ""
        if host not in LOOPBACK:
            return None  # (u) offline: a link elsewhere is taken as it is
        try:
            response = httpx.get(value, timeout=FETCH_TIMEOUT_S)
        except httpx.HTTPError:
            raise _invalid(f"{name} could not be downloaded") from None
        if response.is_error:
            raise _invalid(f"{name} could not be downloaded (HTTP {response.status_code})")
        data = response.content
    elif value.startswith("data:"):
        raise _invalid(f"{name} must be the Base64 string itself, without a data: prefix")
    else:
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(f"{name} is neither a URL nor valid Base64") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise _invalid(f"{name} exceeds 10MB")
    size = image_size(data)
    if size is None or Image.open(io.BytesIO(data)).format not in ("JPEG", "PNG"):
        raise _invalid(f"{name} must be a jpg, jpeg or png image")
    width, height = size
    if min(width, height) < MIN_IMAGE_SIDE:
        raise _invalid(f"{name} width and height must be at least {MIN_IMAGE_SIDE}px")
    if shaped and not 1 / MAX_IMAGE_RATIO <= width / height <= MAX_IMAGE_RATIO:
        raise _invalid(f"{name} aspect ratio must be between 1:2.5 and 2.5:1")
    return data


def _frame(a: float, b: float) -> tuple[int, int]:
    """Even width and height at RENDER_SHORT_SIDE for the shape a:b."""
    long_side = round(RENDER_SHORT_SIDE * max(a, b) / min(a, b) / 2) * 2
    return (long_side, RENDER_SHORT_SIDE) if a >= b else (RENDER_SHORT_SIDE, long_side)


def _text(body: dict[str, Any], name: str, required: bool = False) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _invalid(f"{name} must be a string of at most {MAX_TEXT} characters")
    if required and not value.strip():
        raise _invalid(f"{name} is required")
    return value


def validate(endpoint: str, body: Any) -> tuple[Model, tuple[int, int], bytes | None]:
    """The model, the clip's frame and its start image for an acceptable create; KlingError otherwise."""
    if not isinstance(body, dict):
        raise KlingError(400, 1200, "Request body must be a JSON object")
    name = body.get("model_name", "kling-v1")
    model = MODELS.get(name)
    if model is None or (endpoint == "text2video" and not model.text2video):
        raise _invalid(f"model_name {name!r} is not supported by {endpoint}")
    mode = body.get("mode", "std")
    if mode not in MODES:
        raise _invalid(f"mode must be one of {', '.join(MODES)}")
    if body.get("duration", "5") not in DURATIONS:
        raise _invalid(f"duration must be one of {', '.join(DURATIONS)} (a string)")
    if "cfg_scale" in body:
        raise _invalid("Kling-v2.x models do not support cfg_scale")
    _text(body, "negative_prompt")
    callback = body.get("callback_url", "")
    if not isinstance(callback, str):
        raise _invalid("callback_url must be a string")
    if endpoint == "text2video":
        _text(body, "prompt", required=True)
        aspect = body.get("aspect_ratio", "16:9")
        if aspect not in ASPECTS:
            raise _invalid(f"aspect_ratio must be one of {', '.join(ASPECTS)}")
        a, b = (int(x) for x in aspect.split(":"))
        return model, _frame(a, b), None
    _text(body, "prompt")
    if not body.get("image") and not body.get("image_tail"):
        raise _invalid("At least one of image and image_tail is required")
    if "image_tail" in body and mode not in model.tail_modes:
        raise _invalid(f"image_tail is not supported by {name} in mode {mode}")
    start = read_image(body["image"], "image", shaped=True) if body.get("image") else None
    tail = read_image(body["image_tail"], "image_tail", shaped=False) if body.get("image_tail") else None
    shape = image_size(start or tail) if (start or tail) else None
    return model, _frame(*(shape or (16, 9))), start


def router(sim: Simulator) -> APIRouter:
    state = State()
    sim.keeps_fresh(state, State)
    api = APIRouter()
    cdn = Hosted(sim, PREFIX)
    callbacks: set[asyncio.Task[None]] = set()

    def authorised(request: Request) -> None:
        with state.lock:
            accounts = dict(state.accounts)
        check_token(request.headers.get("authorization"), accounts, time.time())

    def view(request: Request, task: Task) -> dict[str, Any]:
        status = task.status()
        data: dict[str, Any] = {
            "task_id": task.id,
            "task_status": status,
            "task_info": {
                k: v for k, v in {"external_task_id": task.body.get("external_task_id")}.items() if v
            },
            "created_at": task.created_ms,
            "updated_at": task.created_ms
            + int(1000 * min(task.job.latency, time.monotonic() - task.job.created)),
        }
        if status == "failed":
            refused = task.job.phase() is Phase.moderated_output
            data["task_status_msg"] = OUTPUT_REFUSED if refused else INTERNAL_FAILURE
        if status == "succeed":
            seconds = task.body.get("duration", "5")
            url = cdn.url(request, f"{task.id}.mp4")
            data["task_result"] = {"videos": [{"id": str(uuid.uuid4()), "url": url, "duration": seconds}]}
        return data

    async def notify(request: Request, task: Task, url: str) -> None:
        """POST the task's data to its callback_url at each status change, best effort."""
        reported = None
        async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_S, verify=outbound_tls()) as http:
            while True:
                data = view(request, task)
                if data["task_status"] != reported:
                    reported = data["task_status"]
                    with contextlib.suppress(httpx.HTTPError):  # an unreachable receiver is its own problem
                        await http.post(url, json=data)
                    if reported in ("succeed", "failed"):
                        return
                await asyncio.sleep(0.02)

    async def create(endpoint: str, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        try:
            authorised(request)
            # In a worker thread: checking an image may fetch its link.
            model, (width, height), start = await asyncio.to_thread(validate, endpoint, body)
            with state.lock:
                if state.pack_depleted:
                    raise KlingError(429, 1102, "Account balance not enough: the resource pack is used up")
                running = sum(1 for t in state.tasks.values() if not t.job.phase().ended)
                if running >= state.concurrency:
                    raise KlingError(429, 1303, "Parallel task over resource pack limit")
                if sim.draw(Fault.moderation) is not None:
                    raise KlingError(400, 1301, RISK_CONTROL)
                task_id = secrets.token_urlsafe(16)
                faults = (Fault.failed, Fault.moderation_output, Fault.expired)
                job = start_job(sim, VENDOR, model.latency_s, body, faults=faults, job_id=task_id)
                task = Task(task_id, endpoint, job, body, int(time.time() * 1000))
                state.tasks[task_id] = task
        except KlingError as exc:
            return error_response(exc.status, exc.message, code=exc.code)
        duration, prompt = float(body.get("duration", "5")), str(body.get("prompt", ""))
        cdn.put(
            f"{task_id}.mp4",
            lambda: clip(prompt or "keyframe", width, height, duration, FPS, start),
            "video/mp4",
            shape=(VENDOR, width, height, duration),
            ready_at=job.ends,
            fault=job.fault,
        )
        if url := body.get("callback_url"):
            sender = asyncio.create_task(notify(request, task, url))
            callbacks.add(sender)  # the loop keeps only weak references to tasks
            sender.add_done_callback(callbacks.discard)
        return _envelope(view(request, task))

    def query(endpoint: str, task_id: str, request: Request) -> Response:
        try:
            authorised(request)
            task = state.tasks.get(task_id)
            if task is None or task.endpoint != endpoint:
                raise KlingError(404, 1203, f"task {task_id} does not exist")
        except KlingError as exc:
            return error_response(exc.status, exc.message, code=exc.code)
        return _envelope(view(request, task))

    @api.post("/v1/videos/image2video")
    async def image2video(request: Request) -> Response:
        return await create("image2video", request)

    @api.post("/v1/videos/text2video")
    async def text2video(request: Request) -> Response:
        return await create("text2video", request)

    @api.get("/v1/videos/image2video/{task_id}")
    async def image2video_task(task_id: str, request: Request) -> Response:
        return query("image2video", task_id, request)

    @api.get("/v1/videos/text2video/{task_id}")
    async def text2video_task(task_id: str, request: Request) -> Response:
        return query("text2video", task_id, request)

    @api.post("/_sim/accounts")
    async def add_account(pair: dict[str, str]) -> dict[str, list[str]]:
        with state.lock:
            state.accounts[pair["access_key"]] = pair["secret_key"]
            return {"access_keys": sorted(state.accounts)}

    @api.post("/_sim/limits")
    async def set_limits(changes: dict[str, Any]) -> dict[str, Any]:
        with state.lock:
            state.concurrency = int(changes.get("concurrency", state.concurrency))
            state.pack_depleted = bool(changes.get("pack_depleted", state.pack_depleted))
            return {"concurrency": state.concurrency, "pack_depleted": state.pack_depleted}

    cdn.route(api)
    return api
