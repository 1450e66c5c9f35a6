"""Runway's developer API (`runwayml` 5.24, X-Runway-Version 2024-11-06) as the official SDK calls it.

video_to_video (aleph2) and video_upscale take a `videoUri`: a data URI is decoded and really worked on
(re-animated from its first frame at the ratio's size; upscaled to the `resolution` target; re-timed to
`targetFramerate` with blended in-between frames); an https URL is not fetched (offline), so a stand-in
clip is rendered in its place. Tasks run on the clock: THROTTLED while the model's concurrency slots are full, PENDING, RUNNING with
progress, then SUCCEEDED with an output URL (real media from the offline renderers, rendered on first
download) or FAILED with a failureCode. Limits (concurrency, daily generations, credit balance) are set
through `POST /runway/_sim/limits` (under the prefix, so the frame logs it and may fault it). A cancelled
task keeps its concurrency slot until its planned end (simplification).
"""

from __future__ import annotations

import base64
import binascii
import heapq
import math
import mimetypes
import re
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from cutroom.assets import AssetKind, AssetSpec, InputRef
from cutroom.media import MediaError, MediaInfo, probe, run_ffmpeg
from providers.local.image import LocalImage
from providers.local.video import LocalAnimatic
from simulator.core import Fault, Simulator
from simulator.media import image_size

VENDOR = "runway"
PREFIX = "/runway"
API_VERSION = "2024-11-06"
DOC_URL = "https://docs.dev.runwayml.com/api"
KEY_PATTERN = re.compile(r"^key_[0-9a-f]{128}$")
DATA_URI_LIMIT = 5 * 1024 * 1024
NO_CREDITS = "You do not have enough credits to run this task."
#: Source videos longer than this are refused (runway.md: observed 400 on `videoUri`).
MAX_SOURCE_S = 30
#: Magnific's upscale targets as the output's short side, 2k when none is sent (SDK 5.24: "Target output
#: resolution from 720p to 4k. Defaults to `2k`"). (u) The SDK names the targets only; these sizes are assumed.
UPSCALE_SHORT_SIDE = {"720p": 720, "1k": 1080, "2k": 1440, "4k": 2160}
DEFAULT_UPSCALE = "2k"
#: enhance_frame_rate's NTSC targetFramerate values as ffmpeg rates; the others are whole numbers.
NTSC_RATES = {"23_98": "24000/1001", "29_97": "30000/1001", "59_94": "60000/1001"}

GEN4_RATIOS = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")
IMAGE_RATIOS = (
    "1024:1024", "1080:1080", "1168:880", "1360:768", "1440:1080", "1080:1440", "1808:768", "1920:1080",
    "1080:1920", "2112:912", "1280:720", "720:1280", "720:720", "960:720", "720:960", "1680:720",
)  # fmt: skip
V2V_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672", "848:480", "640:480")


@dataclass(frozen=True)
class Model:
    """One model on one endpoint, as the SDK's request types describe it."""

    ratios: tuple[str, ...] = ()
    durations: tuple[int, ...] = ()
    default_duration: int = 5
    latency_s: float = 30.0
    credits_per_s: float = 0.0
    credits_per_image: float = 0.0
    required: tuple[str, ...] = ()
    image: bool = False
    enums: tuple[tuple[str, tuple[str, ...]], ...] = ()
    percents: tuple[str, ...] = ()


_RANGE_2_10 = tuple(range(2, 11))
ENDPOINTS: dict[str, dict[str, Model]] = {
    "image_to_video": {
        "gen4_turbo": Model(GEN4_RATIOS, _RANGE_2_10, 5, 30.0, 5, required=("promptImage", "ratio")),
        "gen4.5": Model(
            GEN4_RATIOS, _RANGE_2_10, 5, 60.0, 12, required=("promptImage", "promptText", "ratio", "duration")
        ),
        "veo3.1": Model(VEO_RATIOS, (4, 6, 8), 8, 90.0, 40, required=("promptImage", "ratio")),
        "veo3.1_fast": Model(VEO_RATIOS, (4, 6, 8), 8, 45.0, 15, required=("promptImage", "ratio")),
    },
    "text_to_video": {
        "gen4.5": Model(
            ("1280:720", "720:1280"), _RANGE_2_10, 5, 60.0, 12, required=("promptText", "ratio", "duration")
        ),
        "veo3.1": Model(VEO_RATIOS, (4, 6, 8), 8, 90.0, 40, required=("promptText", "ratio")),
        "veo3.1_fast": Model(VEO_RATIOS, (4, 6, 8), 8, 45.0, 15, required=("promptText", "ratio")),
    },
    "text_to_image": {
        "gen4_image": Model(IMAGE_RATIOS, latency_s=10.0, credits_per_image=8, required=("promptText", "ratio"),
                            image=True),
        "gen4_image_turbo": Model(
            IMAGE_RATIOS, latency_s=5.0, credits_per_image=2,
            required=("promptText", "ratio", "referenceImages"), image=True,
        ),
    },
    "video_to_video": {
        "aleph2": Model(V2V_RATIOS, (), 5, 60.0, 15, required=("videoUri",)),
    },
    "video_upscale": {
        "magnific_video_upscaler_creative": Model(
            latency_s=60.0, credits_per_s=2, required=("videoUri",),
            enums=(("resolution", tuple(UPSCALE_SHORT_SIDE)), ("flavor", ("vivid", "natural"))),
            percents=("creativity", "sharpen", "smartGrain"),
        ),
        "enhance_frame_rate": Model(
            latency_s=30.0, credits_per_s=2, required=("videoUri", "targetFramerate"),
            enums=(("targetFramerate", ("24", "25", "30", "48", "50", "60", "120", "23_98", "29_97", "59_94")),),
        ),
    },
}  # fmt: skip


@dataclass
class Task:
    id: str
    endpoint: str
    model: str
    body: dict[str, Any]
    created: float
    start: float
    end: float
    credits: float
    fault: Fault | None = None
    failure_code: str | None = None
    cancelled_at: float | None = None

    def status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "CANCELLED"
        if now >= self.end:
            return "FAILED" if self.failure_code else "SUCCEEDED"
        if now < self.start:
            return "THROTTLED"
        # The first tenth of the run is queueing on Runway's side.
        return "PENDING" if now < self.start + 0.1 * (self.end - self.start) else "RUNNING"


@dataclass
class Limits:
    concurrency: int = 2
    daily_generations: int | None = None
    credit_balance: int = 100_000


@dataclass
class State:
    limits: Limits = field(default_factory=Limits)
    tasks: dict[str, Task] = field(default_factory=dict)
    slots: dict[str, list[float]] = field(default_factory=dict)
    daily: dict[str, int] = field(default_factory=dict)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    #: Ephemeral uploads by id: (filename, bytes once the file has been POSTed to its uploadUrl).
    uploads: dict[str, tuple[str, bytes | None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    render_lock: threading.Lock = field(default_factory=threading.Lock)


def error_response(status: int, message: str, retry_after: float | None = None, **extra: Any) -> Response:
    """Runway's error body: {"error": message, ...}, with Retry-After when there is one."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _invalid(issues: list[dict[str, Any]]) -> Response:
    return error_response(400, "Validation of body failed", issues=issues, docUrl=DOC_URL)


def _issue(path: str, message: str, code: str = "custom", **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "path": [path], **extra}


def _check_headers(request: Request) -> Response | None:
    if request.headers.get("x-runway-version") != API_VERSION:
        got = request.headers.get("x-runway-version")
        return error_response(
            400,
            f"Invalid or missing X-Runway-Version header (got {got!r}); expected {API_VERSION!r}",
            docUrl=DOC_URL,
        )
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme != "Bearer" or not KEY_PATTERN.match(key):
        return error_response(401, "Invalid API key")
    return None


def check_image_uri(uri: Any, where: str, media: str = "image") -> dict[str, Any] | None:
    """An input must be an https URL on a domain, a base64 data:<media>/ URI under 5 MB, or runway://."""
    if not isinstance(uri, str) or not uri:
        return _issue(where, "Expected a string", "invalid_type")
    if uri.startswith("runway://"):
        return None
    if uri.startswith("data:"):
        if len(uri) >= DATA_URI_LIMIT:
            return _issue(where, "Data URI must be under 5MB", "too_big", maximum=DATA_URI_LIMIT)
        match = re.match(rf"^data:{media}/[\w.+-]+;base64,(.+)$", uri, re.S)
        if not match:
            return _issue(where, "Invalid data URI")
        try:
            data = base64.b64decode(match.group(1), validate=True)
        except binascii.Error:
            return _issue(where, "Invalid data URI")
        if (
            media == "image" and image_size(data) is None
        ):  # Runway decodes it at once: a 400, never a 500 later
            return _issue(where, "Invalid image: the data URI does not hold a readable image")
        return None
    if not uri.startswith("https://"):
        return _issue(where, "Only HTTPS URLs are allowed")
    host = re.sub(r"^https://([^/:?#]*).*$", r"\1", uri)
    if len(uri) > 2048 or not host or re.fullmatch(r"[\d.]+", host):
        return _issue(where, "Invalid URL: must be a domain name and at most 2048 characters")
    return None


def validate(endpoint: str, spec: Model, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The zod-style issues Runway reports for a body, empty when it is acceptable."""
    issues = [_issue(name, "Required", "invalid_type") for name in spec.required if name not in body]
    if "ratio" in body and spec.ratios and body["ratio"] not in spec.ratios:
        allowed = "|".join(f"'{r}'" for r in spec.ratios)
        issues.append(_issue("ratio", f"Invalid option: expected one of {allowed}", "invalid_value"))
    if "duration" in body and spec.durations and body["duration"] not in spec.durations:
        issues.append(
            _issue("duration", f"Invalid option: expected one of {list(spec.durations)}", "invalid_value")
        )
    text = body.get("promptText")
    if text is not None and (not isinstance(text, str) or not 0 < len(text.encode("utf-16-le")) // 2 <= 1000):
        issues.append(
            _issue("promptText", "Must be a non-empty string of at most 1000 characters", "too_big")
        )
    for name, allowed in spec.enums:
        if name in body and body[name] not in allowed:
            options = "|".join(f"'{a}'" for a in allowed)
            issues.append(_issue(name, f"Invalid option: expected one of {options}", "invalid_value"))
    for name in spec.percents:
        value = body.get(name)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100
        ):
            issues.append(_issue(name, "Must be an integer from 0 to 100", "too_big"))
    if "videoUri" in body:
        issues.extend(_video_issues(body["videoUri"]))
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or not 0 <= seed <= 4294967295):
        issues.append(_issue("seed", "Must be an integer from 0 to 4294967295", "too_big"))
    prompt_image = body.get("promptImage")
    if isinstance(prompt_image, list):
        for i, item in enumerate(prompt_image):
            uri = item.get("uri") if isinstance(item, dict) else None
            if (problem := check_image_uri(uri, "promptImage")) is not None:
                problem["path"] = ["promptImage", i, "uri"]
                issues.append(problem)
    elif prompt_image is not None and (problem := check_image_uri(prompt_image, "promptImage")) is not None:
        issues.append(problem)
    references = body.get("referenceImages")
    if references is not None:
        if not isinstance(references, list) or len(references) > 3:
            issues.append(_issue("referenceImages", "Expected at most 3 reference images", "too_big"))
        else:
            for i, ref in enumerate(references):
                tag = ref.get("tag") if isinstance(ref, dict) else None
                if tag is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{2,15}", str(tag)):
                    issues.append(_issue("referenceImages", "Invalid tag", "invalid_string"))
                problem = check_image_uri(
                    ref.get("uri") if isinstance(ref, dict) else None, "referenceImages"
                )
                if problem is not None:
                    problem["path"] = ["referenceImages", i, "uri"]
                    issues.append(problem)
        if endpoint == "text_to_image" and "referenceImages" in spec.required and not references:
            issues.append(_issue("referenceImages", "At least one reference image is required", "too_small"))
    return issues


def _video_issues(uri: Any) -> list[dict[str, Any]]:
    if (problem := check_image_uri(uri, "videoUri", media="video")) is not None:
        return [problem]
    if not isinstance(uri, str) or not uri.startswith("data:"):
        return []
    info = source_info(uri)
    if info is None or not info.has_video:
        return [_issue("videoUri", "Invalid video: the data URI does not hold a readable video")]
    if (info.duration_s or 0) > MAX_SOURCE_S:
        return [
            _issue("videoUri", f"Asset duration must be at most {MAX_SOURCE_S} seconds", "too_big",
                   maximum=MAX_SOURCE_S)
        ]  # fmt: skip
    return []


def source_info(uri: Any) -> MediaInfo | None:
    """What a data-URI video holds; None for URLs (not fetched: the simulator is offline) or unreadable data."""
    data = _prompt_image_bytes(uri)
    if data is None:
        return None
    try:
        return _video_info(data)
    except MediaError:
        return None


def _video_info(data: bytes) -> MediaInfo:
    with tempfile.TemporaryDirectory(prefix="cutroom-runway-src-") as tmp:
        path = Path(tmp) / "source.mp4"
        path.write_bytes(data)
        return probe(path)


def resolve_uploads(value: Any, uploads: dict[str, tuple[str, bytes | None]], path: list[Any]) -> Any:
    """The body with each runway:// URI swapped for its uploaded file as a data URI (so renders use it);
    raises KeyError with the issue path for an upload that does not exist or was never completed."""
    if isinstance(value, dict):
        return {k: resolve_uploads(v, uploads, [*path, k]) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_uploads(v, uploads, [*path, i]) for i, v in enumerate(value)]
    if isinstance(value, str) and value.startswith("runway://"):
        name, data = uploads.get(value.removeprefix("runway://"), ("", None))
        if data is None:
            raise KeyError(path)
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return value


def _credits(spec: Model, body: dict[str, Any]) -> float:
    if spec.image:
        return spec.credits_per_image
    if "videoUri" in body:
        # Work on a video is billed by the source's length (a URL's is unknown offline: the default).
        info = source_info(body["videoUri"])
        return spec.credits_per_s * math.ceil((info and info.duration_s) or spec.default_duration)
    return spec.credits_per_s * int(body.get("duration") or spec.default_duration)


def _size(ratio: str | None, image: bool) -> tuple[int, int]:
    if not ratio:
        return (1280, 720) if not image else (1024, 1024)
    width, height = (int(x) for x in ratio.split(":"))
    return width, height


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def task_body(task: Task, now: float, base_url: str) -> dict[str, Any]:
    """The task as GET /v1/tasks/{id} answers it: the SDK's discriminated union, keyed by status."""
    status = task.status(now)
    body: dict[str, Any] = {"id": task.id, "createdAt": _iso(task.created), "status": status}
    if status in ("PENDING", "THROTTLED", "RUNNING"):
        body["estimatedCost"] = {"credits": task.credits}
    if status == "RUNNING":
        body["progress"] = round(min(1.0, max(0.0, (now - task.start) / (task.end - task.start))), 3)
    if status == "SUCCEEDED":
        suffix = "png" if ENDPOINTS[task.endpoint][task.model].image else "mp4"
        body["cost"] = {"credits": int(task.credits)}
        body["output"] = [f"{base_url}{PREFIX}/_media/{task.id}.{suffix}"]
    elif status == "FAILED":
        body["cost"] = {"credits": 0}
        body["failureCode"] = task.failure_code
        body["failure"] = FAILURES.get(task.failure_code or "", "Generation failed")
    elif status == "CANCELLED":
        body["cost"] = {"credits": 0}
    return body


FAILURES = {
    "INTERNAL": 'Generation failed: {"code":13,"message":"Internal error. Please try again later."}',
    "SAFETY.INPUT.TEXT": "The prompt text did not pass content moderation.",
    "SAFETY.INPUT.IMAGE": "The input image did not pass content moderation.",
    "SAFETY.OUTPUT.VIDEO": "The generated output did not pass content moderation.",
    "SAFETY.OUTPUT.IMAGE": "The generated output did not pass content moderation.",
}


def _shape(task: Task) -> tuple[Any, ...]:
    """What decides the look of a task's output apart from its prompt (for the simulator's stock media)."""
    settings = ("ratio", "duration", "resolution", "targetFramerate")
    return ("runway", task.endpoint, task.model, *(str(task.body.get(k)) for k in settings))


def render(task: Task) -> tuple[bytes, str]:
    """The task's output, made offline: a PNG for images, an animatic of the prompt image for video, the
    source worked on for video_to_video and video_upscale."""
    if "videoUri" in task.body:
        return _render_from_source(task)
    spec = ENDPOINTS[task.endpoint][task.model]
    width, height = _size(task.body.get("ratio"), spec.image)
    prompt = str(task.body.get("promptText") or "a Runway generation")
    still = AssetSpec(
        kind=AssetKind.image, provider="local", model="runway-sim", prompt=prompt, width=width, height=height,
        seed=int(task.body.get("seed") or 0),
    )  # fmt: skip
    image = LocalImage().render(still)
    if spec.image:
        return image.data, image.mime
    with tempfile.TemporaryDirectory(prefix="cutroom-runway-sim-") as tmp:
        keyframe = Path(tmp) / "keyframe"
        keyframe.write_bytes(_prompt_image_bytes(task.body.get("promptImage")) or image.data)
        clip = AssetSpec(
            kind=AssetKind.video, provider="local", model="runway-sim", prompt=prompt, width=width,
            height=height, duration_s=float(task.body.get("duration") or spec.default_duration), fps=24,
            inputs=(InputRef(role="first_frame", uri=keyframe.as_uri(), sha256=""),),
        )  # fmt: skip
        video = LocalAnimatic().render(clip)
    return video.data, video.mime


def _render_from_source(task: Task) -> tuple[bytes, str]:
    source = _prompt_image_bytes(task.body["videoUri"])
    info = source_info(task.body["videoUri"])
    if source is None or info is None or not (info.width and info.height):
        # An https source is not fetched offline: a clip animated from the prompt stands in for it (for a
        # restyle, at the ratio's size, and that is the result).
        ratio = task.body.get("ratio") if task.endpoint == "video_to_video" else None
        body = {k: v for k, v in task.body.items() if k != "videoUri"}
        stand_in = replace(
            task, endpoint="image_to_video", model="gen4_turbo", body={**body, "ratio": ratio or "1280:720"}
        )
        source = render(stand_in)[0]
        if task.endpoint == "video_to_video":
            return source, "video/mp4"
        info = _video_info(source)
    with tempfile.TemporaryDirectory(prefix="cutroom-runway-v2v-") as tmp:
        src, out = Path(tmp) / "source.mp4", Path(tmp) / "out.mp4"
        src.write_bytes(source)
        encode = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-an", str(out)]
        if task.model == "enhance_frame_rate":
            target = task.body["targetFramerate"]
            rate = NTSC_RATES.get(target, target)
            run_ffmpeg(["-i", str(src), "-vf", f"framerate=fps={rate}", *encode], what="re-timing the source")
            return out.read_bytes(), "video/mp4"
        if task.endpoint == "video_upscale":
            short = UPSCALE_SHORT_SIDE[task.body.get("resolution", DEFAULT_UPSCALE)]
            scale = short / min(info.width, info.height)
            width, height = (2 * round(side * scale / 2) for side in (info.width, info.height))
            run_ffmpeg(
                ["-i", str(src), "-vf", f"scale={width}:{height}:flags=lanczos", *encode],
                what="upscaling the source",
            )
            return out.read_bytes(), "video/mp4"
        # A restyle: the source's first frame re-animated with the prompt, at the ratio's size.
        first = Path(tmp) / "first.png"
        run_ffmpeg(["-i", str(src), "-frames:v", "1", str(first)], what="taking the source's first frame")
        width, height = (
            _size(task.body.get("ratio"), False) if task.body.get("ratio") else (info.width, info.height)
        )
        clip = AssetSpec(
            kind=AssetKind.video, provider="local", model="runway-sim",
            prompt=str(task.body.get("promptText") or "a Runway restyle"), width=width - width % 2,
            height=height - height % 2, duration_s=round(info.duration_s or 5.0, 2), fps=24,
            inputs=(InputRef(role="first_frame", uri=first.as_uri(), sha256=""),),
        )  # fmt: skip
        video = LocalAnimatic().render(clip)
    return video.data, video.mime


def _prompt_image_bytes(prompt_image: Any) -> bytes | None:
    """The decoded data URI, if the prompt image is one; URLs are not fetched (the simulator is offline)."""
    if isinstance(prompt_image, list):
        prompt_image = next((p.get("uri") for p in prompt_image if isinstance(p, dict)), None)
    if isinstance(prompt_image, str) and prompt_image.startswith("data:"):
        return base64.b64decode(prompt_image.split(",", 1)[1])
    return None


def router(sim: Simulator) -> APIRouter:
    state = State()

    sim.keeps_fresh(state, State)  # a reset starts the account afresh
    api = APIRouter()

    def create(endpoint: str, request: Request, body: Any) -> Response:
        if (rejected := _check_headers(request)) is not None:
            return rejected
        if not isinstance(body, dict):
            return _invalid([_issue("body", "Expected object", "invalid_type")])
        model = body.get("model")
        models = ENDPOINTS[endpoint]
        if model not in models:
            if isinstance(model, str) and model:
                return error_response(403, f"Model variant {model} is not available")
            allowed = "|".join(f"'{m}'" for m in models)
            return _invalid([_issue("model", f"Invalid option: expected one of {allowed}", "invalid_union")])
        spec = models[model]
        if issues := validate(endpoint, spec, body):
            return _invalid(issues)
        try:
            body = resolve_uploads(body, state.uploads, [])
        except KeyError as missing:
            return _invalid(
                [{"code": "custom", "message": "Unknown or incomplete upload", "path": missing.args[0]}]
            )
        credits = _credits(spec, body)
        now = time.time()
        with state.lock:
            limit = state.limits.daily_generations
            if limit is not None and state.daily.get(model, 0) >= limit:
                return error_response(429, f"You have exceeded the daily generation limit for {model}")
            if state.limits.credit_balance < credits:
                return error_response(400, NO_CREDITS)
            state.limits.credit_balance -= int(credits)
            state.daily[model] = state.daily.get(model, 0) + 1
            fault = sim.draw(
                Fault.failed, Fault.moderation, Fault.moderation_output, Fault.throttled, Fault.expired
            )
            latency = sim.latency(spec.latency_s)
            # Concurrency: a task waits (THROTTLED) for the earliest of the model's busy slots to free up.
            slots = state.slots.setdefault(model, [])
            while slots and slots[0] <= now:
                heapq.heappop(slots)
            start = now if len(slots) < state.limits.concurrency else heapq.heappop(slots)
            if fault is Fault.throttled:
                start += max(latency, 0.5 * sim.latency(spec.latency_s))
            task = Task(
                id=str(uuid.uuid4()), endpoint=endpoint, model=model, body=body, created=now, start=start,
                end=start + latency, credits=credits, fault=fault, failure_code=_failure_code(sim, fault, spec),
            )  # fmt: skip
            if task.failure_code and task.failure_code.startswith("SAFETY.INPUT"):
                task.end = start + 0.2 * latency  # input moderation fails before generation
            heapq.heappush(slots, task.end)
            state.tasks[task.id] = task
            sim.record_job(VENDOR, task.id, task.created, task.end, started=task.start)
        return JSONResponse({"id": task.id, "estimatedCost": {"credits": credits}})

    for endpoint in ENDPOINTS:

        async def handler(request: Request, endpoint: str = endpoint) -> Response:
            try:
                body = await request.json()
            except ValueError:
                return _invalid([_issue("body", "Invalid JSON", "invalid_type")])
            return create(endpoint, request, body)

        api.add_api_route(f"/v1/{endpoint}", handler, methods=["POST"], name=f"runway_{endpoint}")

    @api.post("/v1/uploads")
    async def start_upload(request: Request) -> Response:
        if (rejected := _check_headers(request)) is not None:
            return rejected
        try:
            body = await request.json()
        except ValueError:
            body = None
        filename = body.get("filename") if isinstance(body, dict) else None
        issues = (
            [] if isinstance(filename, str) and filename else [_issue("filename", "Required", "invalid_type")]
        )
        if not isinstance(body, dict) or body.get("type") != "ephemeral":
            issues.append(_issue("type", "Invalid option: expected one of 'ephemeral'", "invalid_value"))
        if issues:
            return _invalid(issues)
        upload_id = str(uuid.uuid4())
        state.uploads[upload_id] = (filename, None)
        base = str(request.base_url).rstrip("/")
        # An S3-style presigned POST: the SDK sends `fields` plus `file` as multipart, without auth.
        return JSONResponse(
            {
                "uploadUrl": f"{base}{PREFIX}/_uploads/{upload_id}",
                "fields": {"key": f"ephemeral/{upload_id}/{filename}", "policy": "c2ltdWxhdG9y"},
                "runwayUri": f"runway://{upload_id}",
            }
        )

    @api.post("/_uploads/{upload_id}")
    async def receive_upload(upload_id: str, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + await request.body()
        )
        parts = {
            part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in (message.get_payload() if message.is_multipart() else [])
        }
        entry = state.uploads.get(upload_id)
        if (
            entry is None
            or parts.get("key") != f"ephemeral/{upload_id}/{entry[0]}".encode()
            or not parts.get("file")
        ):
            return Response(b"<Error><Code>AccessDenied</Code></Error>", 403, media_type="application/xml")
        state.uploads[upload_id] = (entry[0], parts["file"])
        return Response(status_code=204)

    @api.get("/v1/tasks/{task_id}")
    async def get_task(task_id: str, request: Request) -> Response:
        if (rejected := _check_headers(request)) is not None:
            return rejected
        task = state.tasks.get(task_id)
        if task is None:
            return error_response(404, "Task not found")
        return JSONResponse(task_body(task, time.time(), str(request.base_url).rstrip("/")))

    @api.delete("/v1/tasks/{task_id}")
    async def cancel_task(task_id: str, request: Request) -> Response:
        if (rejected := _check_headers(request)) is not None:
            return rejected
        with state.lock:
            task = state.tasks.get(task_id)
            if task is None:
                return error_response(404, "Task not found")
            now = time.time()
            if task.status(now) in ("PENDING", "THROTTLED", "RUNNING"):
                task.cancelled_at = now
            else:
                del state.tasks[task_id]  # a finished task is deleted; it then 404s
        return Response(status_code=204)

    @api.get("/v1/organization")
    async def organization(request: Request) -> Response:
        if (rejected := _check_headers(request)) is not None:
            return rejected
        models = [m for ms in ENDPOINTS.values() for m in ms]
        limits = state.limits
        return JSONResponse(
            {
                "creditBalance": limits.credit_balance,
                "tier": {
                    "maxMonthlyCreditSpend": 10_000,
                    "models": {
                        m: {"maxConcurrentGenerations": limits.concurrency,
                            "maxDailyGenerations": limits.daily_generations}
                        for m in models
                    },
                },
                "usage": {"models": {m: {"dailyGenerations": n} for m, n in state.daily.items()}},
            }
        )  # fmt: skip

    @api.get("/_media/{name}")
    def media(name: str) -> Response:
        # Signed URLs need no auth; a sync route so the render runs in FastAPI's threadpool.
        task = state.tasks.get(name.rsplit(".", 1)[0])
        if task is None or task.status(time.time()) != "SUCCEEDED":
            return Response(b"<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml")
        if task.fault is Fault.expired or time.time() > task.end + sim.config.output_ttl_s:
            return Response(
                b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                403,
                media_type="application/xml",
            )
        with state.render_lock:
            if task.id not in state.media:
                state.media[task.id] = sim.media(_shape(task), lambda: render(task))
            data, mime = state.media[task.id]
        return Response(data, media_type=mime)

    @api.get("/_sim/limits")
    async def get_limits() -> dict[str, Any]:
        return vars(state.limits)

    @api.post("/_sim/limits")
    async def set_limits(changes: dict[str, Any]) -> dict[str, Any]:
        for name, value in changes.items():
            if not hasattr(state.limits, name):
                return {"error": f"unknown limit {name}"}
            setattr(state.limits, name, value)
        state.daily.clear()
        return vars(state.limits)

    return api


def _failure_code(sim: Simulator, fault: Fault | None, spec: Model) -> str | None:
    if fault is Fault.failed:
        return "INTERNAL"
    if fault is Fault.moderation:
        return sim.random.choice(["SAFETY.INPUT.TEXT", "SAFETY.INPUT.IMAGE"])
    if fault is Fault.moderation_output:
        return "SAFETY.OUTPUT.IMAGE" if spec.image else "SAFETY.OUTPUT.VIDEO"
    return None
