"""fal.ai's queue API for FLUX image models, as `fal-client` 1.0.3 calls it (../shared/providers/fal.md).

Hosts, under PREFIX: the queue (`queue.fal.run`) is `{PREFIX}/{model_id}` for submits and
`{PREFIX}/{owner}/{alias}/requests/{id}[/status|/cancel]` for the rest (the model's sub-path is dropped, as
fal's status/response/cancel URLs drop it); the sync host (`fal.run`) is `{PREFIX}/run/{model_id}`; output files
(`v3.fal.media`) are `{PREFIX}/_media/{name}`, public, through outputs.Hosted.

What it covers: `Authorization: Key <key_id>:<key_secret>` (401 `{"detail": …}` otherwise); submit answers the
request handle at once and the runner validates later, as fal does (a webhook example in fal's docs delivers a
missing-prompt 422 as the run's payload): a bad input is accepted, ends COMPLETED, and its result GET answers 422
`{"detail": [{loc, msg, type, url, ctx?, input}]}`; the sync host answers the same 422 directly. States
IN_QUEUE (with a 0-indexed queue_position) → IN_PROGRESS (logs with `?logs=1|true`) → COMPLETED; there is no
FAILED state: a failed run is COMPLETED with `error`/`error_type` set and its result GET answers the error.
Concurrency: each key id is an account with `concurrency` IN_PROGRESS slots (2, as new fal accounts;
`POST {PREFIX}/_sim/limits`); extra requests wait IN_QUEUE and are never refused for it. `X-Fal-Request-Timeout`
ends a request that waited longer with 504 `request_timeout`. Cancel: queued → 200 `{"status": "OK"}` (removed),
running → 202 `CANCELLATION_REQUESTED` (the run stops), done → 400 `ALREADY_COMPLETED`, unknown → 404
`NOT_FOUND`; a cancelled request ends COMPLETED and its result answers 499 `client_cancelled`. Balance:
`POST {PREFIX}/_sim/billing {"balance_usd": 0}` locks every account: 403 "User is locked. Reason: Exhausted
balance". Faults: failed → result 500 `runner_server_error`; moderation → 422 `content_policy_violation`;
moderation_output → a black image with `has_nsfw_concepts[i]: true` (fal's safety checker; only while
enable_safety_checker is on); expired → the file URL answers 404.

Video (VIDEO_MODELS: Kling, Pika, WAN 2.2, wan-flf2v, LTX, Mochi): each endpoint's fields validated as its
pydantic schema would (Kling's `duration` is "5" | "10", Pika's 5 | 10, WAN's `num_frames` a range …), the same
late 422s; the result is `{"video": File, "seed"}` with a real MP4 of the asked length, at the asked
`aspect_ratio`, else the start image's shape when it came inline, else 16:9 (u: links are not fetched offline);
a flagged clip (moderation_output) is a 422 `content_policy_violation` at `["body"]` (u) and no file.
Webhooks: a submit with `?fal_webhook=` gets fal's post `{request_id, gateway_request_id, status: OK|ERROR,
payload, error}` when the run ends.

Sources: fal_client/client.py (URL building, _parse_status, _raise_for_status, retries), fal docs pages on the
queue, cancel, model errors, request errors, concurrency (via fal.md) and the models' llms.txt pages.
Unverified (u): the image_size enum's pixel sizes (a third-party client's map; they match fal's names); ultra's
sizes (2048-px-square area at the ratio, rounded to 64: 16:9 → 2752x1536 is corroborated by a reseller's docs,
the rest follow the rule); kontext's sizes (FLUX Kontext's preferred resolutions, as diffusers lists them); the
text of 401/404/400 bodies other than "No user found for Key ID and Secret"; `error`/`error_type` on a COMPLETED
status of a run that failed; the cancel status codes (fal documents the four status strings); the 404 body of an
expired file; per-megapixel billing on exact megapixels; webhook signatures (not sent). Not simulated: the SSE
status stream, file uploads (rest.fal.ai / v3.fal.media upload), concurrency of sync-host calls.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import heapq
import io
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from PIL import Image

from simulator import media
from simulator.core import Fault, Simulator, outbound_tls
from simulator.outputs import MEDIA_PATH, Hosted

VENDOR = "fal"
PREFIX = "/fal"
#: One usable key, in fal's `<key_id>:<key_secret>` shape (any key of that shape is accepted).
SIMULATOR_KEY = "3f6c1a52-8d4e-4b7a-9c21-5e0f7d8a9b13:7c9e2f41a8b35d60e1f24c7b9a0d3e58"
KEY_SHAPE = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}:[0-9a-f]{32}$")
EXHAUSTED = "User is locked. Reason: Exhausted balance"
DOCS = "https://docs.fal.ai/errors#"
FLAGGED = "The content was flagged by a content checker."
FLAGGED_VIDEO = "The generated video was flagged by a content checker."
#: Namespaced apps keep three path segments in their request URLs (fal_client.client.APP_NAMESPACES).
APP_NAMESPACES = ("workflows", "comfy")

#: image_size names → pixels (u).
IMAGE_SIZES = {
    "square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024), "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576),
}  # fmt: skip
ASPECT_RATIOS = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
#: FLUX Kontext's preferred output resolutions (u): the one nearest the asked (or input image's) aspect.
KONTEXT_SIZES = (
    (672, 1568), (688, 1504), (720, 1456), (752, 1392), (800, 1328), (832, 1248), (880, 1184), (944, 1104),
    (1024, 1024), (1104, 944), (1184, 880), (1248, 832), (1328, 800), (1392, 752), (1456, 720), (1504, 688),
    (1568, 672),
)  # fmt: skip
MAX_SIDE = 14142  # fal's ImageSize schema: width/height <= 14142
FORMATS = {"jpeg": "image/jpeg", "png": "image/png"}
#: Share of a run's latency spent in fal's own dispatch (IN_QUEUE at position 0) before a runner picks it up.
DISPATCH_SHARE = 0.1
#: A run that is refused (bad input, flagged prompt) stops after this share of its latency.
REFUSED_SHARE = 0.1
#: fal.md: a webhook post times out after 15 s; (u) tries and pause between them, scaled down from fal's.
WEBHOOK_TIMEOUT_S = 15.0
WEBHOOK_ATTEMPTS = 3
WEBHOOK_PAUSE_S = 0.1


@dataclass(frozen=True)
class Model:
    """One endpoint's input schema and price, from its fal model page."""

    latency_s: float
    usd_per_mp: float = 0.0
    usd_per_image: float = 0.0
    sizing: str = "image_size"  # image_size | aspect_ratio (ultra) | kontext
    steps: tuple[int, int, int] | None = None  # num_inference_steps (min, max, default)
    guidance: tuple[float, float] | None = None  # guidance_scale range
    pro: bool = False  # safety_tolerance "1".."6" and enhance_prompt
    image_url: bool | None = None  # required (True), optional image prompt (False), absent (None)


MODELS = {
    "fal-ai/flux/schnell": Model(2.0, usd_per_mp=0.003, steps=(1, 12, 4)),
    "fal-ai/flux/dev": Model(5.0, usd_per_mp=0.025, steps=(1, 50, 28), guidance=(1, 20)),
    "fal-ai/flux-pro/v1.1": Model(5.0, usd_per_mp=0.04, pro=True),
    "fal-ai/flux-pro/v1.1-ultra": Model(10.0, usd_per_image=0.06, sizing="aspect_ratio", pro=True, image_url=False),
    "fal-ai/flux-pro/kontext": Model(6.0, usd_per_image=0.04, sizing="kontext", guidance=(1, 20), pro=True,
                                     image_url=True),
}  # fmt: skip


@dataclass(frozen=True)
class Video:
    """One video endpoint's input schema, output and price, from its fal model page (fal.md; (u) where fal.md
    gives no field list: LTX, Mochi, wan-flf2v's ranges)."""

    latency_s: float
    images: tuple[str, ...] = ()  # required image URL fields (a start frame; flf2v's start and end)
    tail: str | None = None  # an optional end-frame field (Kling pro `tail_image_url`)
    durations: tuple[str | int, ...] = ()  # the `duration` enum: Kling strings "5"/"10", Pika ints 5/10
    frames: tuple[int, int, int] | None = None  # num_frames (min, max, default) with frames_per_second
    fps: tuple[int, int, int] = (24, 24, 24)  # frames_per_second (min, max, default); fixed when min == max
    length_s: float = 5.0  # the clip length of a model with no length field
    resolutions: tuple[str, ...] = ()  # the `resolution` enum, fal's default first
    short_side: int = 720  # without a resolution field
    aspects: tuple[str, ...] = ()  # the `aspect_ratio` enum; without one the clip keeps its image's shape
    cfg_scale: bool = False  # Kling's cfg_scale, 0 to 1
    flags: tuple[str, ...] = ()  # boolean fields
    usd_per_s: float = 0.0  # per clip second (WAN: seconds counted at 16 fps)
    usd_per_video: float = 0.0
    by_resolution: dict[str, float] = field(default_factory=dict)  # the rate by resolution, where it varies


KLING_I2V = Video(120.0, images=("image_url",), durations=("5", "10"), cfg_scale=True)
PIKA = Video(60.0, durations=(5, 10), resolutions=("720p", "1080p"), usd_per_s=0.04,
             by_resolution={"720p": 0.04, "1080p": 0.09})  # fmt: skip
WAN_ASPECTS = ("auto", "16:9", "9:16", "1:1")
VIDEO_MODELS = {
    "fal-ai/kling-video/v2.1/standard/image-to-video": dataclasses.replace(KLING_I2V, usd_per_s=0.056),
    "fal-ai/kling-video/v2.1/pro/image-to-video": dataclasses.replace(
        KLING_I2V, tail="tail_image_url", short_side=1080, usd_per_s=0.098
    ),
    "fal-ai/kling-video/v2.1/standard/text-to-video": dataclasses.replace(
        KLING_I2V, images=(), aspects=("16:9", "9:16", "1:1"), usd_per_s=0.056
    ),
    "fal-ai/kling-video/v2.1/pro/text-to-video": dataclasses.replace(
        KLING_I2V, latency_s=180.0, images=(), aspects=("16:9", "9:16", "1:1"), short_side=1080, usd_per_s=0.098
    ),
    "fal-ai/kling-video/v2.1/master/image-to-video": dataclasses.replace(
        KLING_I2V, latency_s=240.0, short_side=1080, usd_per_s=0.28
    ),
    "fal-ai/kling-video/v2.1/master/text-to-video": dataclasses.replace(
        KLING_I2V, latency_s=240.0, images=(), aspects=("16:9", "9:16", "1:1"), short_side=1080, usd_per_s=0.28
    ),
    "fal-ai/kling-video/v2.5-turbo/standard/image-to-video": dataclasses.replace(KLING_I2V, usd_per_s=0.042),
    "fal-ai/kling-video/v2.5-turbo/pro/image-to-video": dataclasses.replace(
        KLING_I2V, tail="tail_image_url", short_side=1080, usd_per_s=0.07
    ),
    "fal-ai/kling-video/v2.5-turbo/pro/text-to-video": dataclasses.replace(
        KLING_I2V, images=(), aspects=("16:9", "9:16", "1:1"), short_side=1080, usd_per_s=0.07
    ),
    "fal-ai/pika/v2.2/image-to-video": dataclasses.replace(PIKA, images=("image_url",)),
    "fal-ai/pika/v2.2/text-to-video": dataclasses.replace(
        PIKA, aspects=("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3")
    ),
    "fal-ai/wan/v2.2-a14b/image-to-video": Video(
        60.0, images=("image_url",), frames=(17, 161, 81), fps=(4, 60, 16), resolutions=("720p", "480p", "580p"),
        aspects=WAN_ASPECTS, flags=("enable_safety_checker", "enable_prompt_expansion"), usd_per_s=0.08,
        by_resolution={"480p": 0.04, "580p": 0.06, "720p": 0.08},
    ),
    "fal-ai/wan-flf2v": Video(
        90.0, images=("start_image_url", "end_image_url"), frames=(81, 100, 81), fps=(5, 24, 16),
        resolutions=("720p", "480p"), aspects=WAN_ASPECTS, flags=("enable_safety_checker",), usd_per_video=0.4,
        by_resolution={"480p": 0.2, "720p": 0.4},
    ),
    "fal-ai/ltx-video/image-to-video": Video(20.0, images=("image_url",), short_side=512,
                                             usd_per_video=0.02),
    "fal-ai/mochi-v1": Video(90.0, length_s=5.4, fps=(30, 30, 30), short_side=480,
                             flags=("enable_prompt_expansion",), usd_per_video=0.4),
}  # fmt: skip
#: The short side of each resolution name, in pixels (u: fal's pages give the names only).
SHORT_SIDES = {"480p": 480, "580p": 580, "720p": 720, "1080p": 1080}


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """fal's request-error body, `{"detail": str, "error_type": …}`, with X-Fal-Error-Type and Retry-After."""
    error_type = {503: "runner_scheduling_failure", 504: "request_timeout"}.get(status)
    return _request_error(status, message, error_type, retry_after=retry_after)


def _request_error(
    status: int, detail: str, error_type: str | None, *, retry_after: float | None = None, **headers: str
) -> Response:
    body: dict[str, Any] = {"detail": detail}
    if error_type:
        body["error_type"] = error_type
        headers["X-Fal-Error-Type"] = error_type
    headers["X-Fal-Retryable"] = "true" if status in (429, 503, 504) else "false"
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    return JSONResponse(body, status_code=status, headers=headers)


def _model_error(details: list[dict[str, Any]]) -> Response:
    return JSONResponse({"detail": details}, status_code=422, headers={"X-Fal-Retryable": "false"})


def _issue(field_: str, kind: str, msg: str, value: Any = None, **ctx: Any) -> dict[str, Any]:
    issue = {"loc": ["body", field_], "msg": msg, "type": kind, "url": DOCS + kind, "input": value}
    if ctx:
        issue["ctx"] = ctx
    return issue


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(
    body: dict[str, Any], name: str, low: float, high: float, *, integer: bool
) -> list[dict[str, Any]]:
    if name not in body:
        return []
    value = body[name]
    if not (_is_int(value) if integer else _is_int(value) or isinstance(value, float)):
        kind = "int_type" if integer else "float_type"
        return [_issue(name, kind, f"Input should be a valid {'integer' if integer else 'number'}", value)]
    if value < low:
        return [_issue(name, "greater_than_equal", f"Input should be greater than or equal to {low:g}", value,
                       ge=low)]  # fmt: skip
    if value > high:
        return [
            _issue(name, "less_than_equal", f"Input should be less than or equal to {high:g}", value, le=high)
        ]
    return []


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> list[dict[str, Any]]:
    if name not in body or body[name] in allowed:
        return []
    expected = ", ".join(f"'{a}'" for a in allowed[:-1]) + f" or '{allowed[-1]}'"
    return [_issue(name, "literal_error", f"Input should be {expected}", body[name], expected=expected)]


def validate(spec: Model, body: dict[str, Any]) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
    """The runner's input errors for a body, and the pixel size of its image_url when it is a data URI."""
    issues: list[dict[str, Any]] = []
    prompt = body.get("prompt")
    if "prompt" not in body:
        issues.append(_issue("prompt", "missing", "Field required", body))
    elif not isinstance(prompt, str):
        issues.append(_issue("prompt", "string_type", "Input should be a valid string", prompt))
    for name in ("enable_safety_checker", "sync_mode", "enhance_prompt", "raw"):
        if name in body and not isinstance(body[name], bool):
            issues.append(_issue(name, "bool_type", "Input should be a valid boolean", body[name]))
    if "seed" in body and not _is_int(body["seed"]):
        issues.append(_issue("seed", "int_type", "Input should be a valid integer", body["seed"]))
    issues += _number(body, "num_images", 1, 4, integer=True)
    issues += _choice(body, "output_format", tuple(FORMATS))
    if spec.sizing == "image_size":
        issues += _image_size_issues(body)
    else:
        issues += _choice(body, "aspect_ratio", ASPECT_RATIOS)
    if spec.steps:
        issues += _number(body, "num_inference_steps", spec.steps[0], spec.steps[1], integer=True)
        issues += _choice(body, "acceleration", ("none", "regular", "high"))
    if spec.guidance:
        issues += _number(body, "guidance_scale", *spec.guidance, integer=False)
    if spec.pro:
        issues += _choice(body, "safety_tolerance", tuple("123456"))
    if spec.sizing == "aspect_ratio":
        issues += _number(body, "image_prompt_strength", 0, 1, integer=False)
    source_size = None
    if spec.image_url and "image_url" not in body:
        issues.append(_issue("image_url", "missing", "Field required", body))
    elif spec.image_url is not None and "image_url" in body:
        problem, source_size = _image_input(body["image_url"])
        if problem:
            issues.append(problem)
    return issues, source_size


@dataclass(frozen=True)
class Clip:
    """What a valid video body makes: its frame size, length and rate, and the start image's bytes if inline."""

    width: int
    height: int
    duration_s: float
    fps: int
    start: bytes | None = None


def validate_video(spec: Video, body: dict[str, Any]) -> tuple[list[dict[str, Any]], Clip | None]:
    """The runner's input errors for a video body, and the clip a valid one makes."""
    issues: list[dict[str, Any]] = []
    if "prompt" not in body:
        issues.append(_issue("prompt", "missing", "Field required", body))
    for name in ("prompt", "negative_prompt"):
        if name in body and not isinstance(body[name], str):
            issues.append(_issue(name, "string_type", "Input should be a valid string", body[name]))
    for name in spec.flags:
        if name in body and not isinstance(body[name], bool):
            issues.append(_issue(name, "bool_type", "Input should be a valid boolean", body[name]))
    if "seed" in body and not _is_int(body["seed"]):
        issues.append(_issue("seed", "int_type", "Input should be a valid integer", body["seed"]))
    if spec.durations:
        issues += _literal(body, "duration", spec.durations)
    if spec.frames:
        issues += _number(body, "num_frames", spec.frames[0], spec.frames[1], integer=True)
        issues += _number(body, "frames_per_second", spec.fps[0], spec.fps[1], integer=True)
    if spec.resolutions:
        issues += _choice(body, "resolution", spec.resolutions)
    if spec.aspects:
        issues += _choice(body, "aspect_ratio", spec.aspects)
    if spec.cfg_scale:
        issues += _number(body, "cfg_scale", 0, 1, integer=False)
    images: dict[str, tuple[int, int] | None] = {}
    for name in (*spec.images, spec.tail):
        if name is None:
            continue
        if name not in body:
            if name in spec.images:
                issues.append(_issue(name, "missing", "Field required", body))
            continue
        problem, images[name] = _image_input(body[name], name)
        if problem:
            issues.append(problem)
    if issues:
        return issues, None
    first = spec.images[0] if spec.images else None
    start = media.data_uri(body[first]) if first else None
    return [], _clip(spec, body, images.get(first) if first else None, start[1] if start else None)


def _literal(body: dict[str, Any], name: str, allowed: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """An enum field as pydantic checks a Literal: "5" is not 5."""
    if name not in body or any(type(body[name]) is type(a) and body[name] == a for a in allowed):
        return []
    expected = " or ".join(repr(a) for a in allowed)
    return [_issue(name, "literal_error", f"Input should be {expected}", body[name], expected=expected)]


def _clip(spec: Video, body: dict[str, Any], image: tuple[int, int] | None, start: bytes | None) -> Clip:
    """The clip fal makes: the asked aspect ratio, else the start image's shape, else 16:9 (u: a linked image is
    not fetched offline); its short side by resolution; its length by duration or frames."""
    ratio = body.get("aspect_ratio", "auto")
    if ratio != "auto":
        a, b = (int(x) for x in ratio.split(":"))
    elif image is not None:
        a, b = image
    else:
        a, b = 16, 9
    resolution = body.get("resolution", spec.resolutions[0] if spec.resolutions else None)
    short = SHORT_SIDES[resolution] if resolution else spec.short_side
    long = 16 * round(short * max(a, b) / min(a, b) / 16)
    width, height = (long, short) if a >= b else (short, long)
    fps = body.get("frames_per_second", spec.fps[2])
    if spec.durations:
        duration_s = float(body.get("duration", spec.durations[0]))
    elif spec.frames:
        duration_s = body.get("num_frames", spec.frames[2]) / fps
    else:
        duration_s = spec.length_s
    return Clip(width - width % 2, height - height % 2, duration_s, fps, start)


def video_price(spec: Video, body: dict[str, Any], clip: Clip) -> float:
    """Per clip second (WAN's seconds counted at 16 fps) or per video, at the body's resolution's rate."""
    resolution = body.get("resolution", spec.resolutions[0] if spec.resolutions else None)
    if spec.usd_per_video:
        return spec.by_resolution.get(resolution, spec.usd_per_video)
    seconds = body.get("num_frames", 0) / 16 if spec.frames else clip.duration_s
    return seconds * spec.by_resolution.get(resolution, spec.usd_per_s)


def _image_size_issues(body: dict[str, Any]) -> list[dict[str, Any]]:
    size = body.get("image_size")
    if size is None or (isinstance(size, str) and size in IMAGE_SIZES):
        return []
    if isinstance(size, dict):
        found = []
        for side in ("width", "height"):
            value = size.get(side, 512)
            if not _is_int(value) or not 0 < value <= MAX_SIDE:
                msg = f"Input should be an integer from 1 to {MAX_SIDE}"
                issue = _issue("image_size", "less_than_equal", msg, value, le=MAX_SIDE)
                found.append({**issue, "loc": ["body", "image_size", side]})
        return found
    names = ", ".join(f"'{n}'" for n in IMAGE_SIZES)
    return [
        _issue("image_size", "literal_error", f"Input should be {names} or an object {{width, height}}", size)
    ]


def _image_input(value: Any, name: str = "image_url") -> tuple[dict[str, Any] | None, tuple[int, int] | None]:
    """A data URI must hold a whole image; an http(s) URL is accepted by syntax (the simulator is offline)."""
    if not isinstance(value, str):
        return _issue(name, "string_type", "Input should be a valid string", value), None
    if value.startswith(("http://", "https://")):
        return None, None
    if not value.startswith("data:"):
        msg = "Failed to download the file. Please check if the URL is accessible."
        return _issue(name, "file_download_error", msg, value), None
    decoded = media.data_uri(value)
    size = media.image_size(decoded[1]) if decoded else None
    if size is None:
        msg = "Failed to load the image. Please ensure the image file is not corrupted and is in a supported format."
        return _issue(name, "image_load_error", msg, value[:64]), None
    return None, size


def output_size(spec: Model, body: dict[str, Any], source: tuple[int, int] | None) -> tuple[int, int]:
    """The pixel size fal makes for a valid body."""
    if spec.sizing == "image_size":
        size = body.get("image_size", "landscape_4_3")
        return (
            IMAGE_SIZES[size] if isinstance(size, str) else (size.get("width", 512), size.get("height", 512))
        )
    ratio = body.get("aspect_ratio")
    if ratio:
        a, b = (int(x) for x in ratio.split(":"))
    elif spec.sizing == "kontext":
        a, b = source or (1, 1)  # (u) kontext keeps the input image's aspect; a URL's is unknown offline
    else:
        a, b = 16, 9  # ultra's default aspect_ratio
    if spec.sizing == "aspect_ratio":  # ultra: a 2048-px square's area at the ratio, sides rounded to 64 (u)
        scale = math.sqrt(a / b)
        return 64 * round(2048 * scale / 64), 64 * round(2048 / scale / 64)
    return min(KONTEXT_SIZES, key=lambda wh: abs(math.log(wh[0] / wh[1]) - math.log(a / b)))


def app_path(model_id: str) -> str:
    """The owner/alias part of a model id that request URLs use (fal_client AppId)."""
    parts = model_id.split("/")
    return "/".join(parts[:3] if parts[0] in APP_NAMESPACES else parts[:2])


@dataclass
class Run:
    """One request on an account's queue. Times are time.monotonic()."""

    id: str
    model_id: str
    body: dict[str, Any]
    created: float
    run_s: float
    fault: Fault | None
    issues: list[dict[str, Any]]
    size: tuple[int, int]
    seed: int
    start_timeout: float | None = None
    start: float | None = None
    end: float | None = None
    cancelled: bool = False
    timed_out: bool = False
    files: list[str] = field(default_factory=list)
    clip: Clip | None = None  # a video run's clip; None for an image run

    @property
    def ready(self) -> float:
        return self.created + DISPATCH_SHARE * self.run_s

    @property
    def closed(self) -> bool:
        """Ended without ever running (cancelled or timed out in the queue)."""
        return self.start is None and self.end is not None

    def status(self, now: float) -> str:
        if self.start is None:
            return "COMPLETED" if self.closed and self.end <= now else "IN_QUEUE"
        return "IN_PROGRESS" if now < self.end else "COMPLETED"

    @property
    def fmt(self) -> str:
        return self.body.get("output_format", "jpeg")


@dataclass
class Account:
    runs: list[Run] = field(default_factory=list)
    balance_usd: float = 100.0


@dataclass
class Limits:
    concurrency: int = 2
    balance_usd: float = 100.0


def _schedule(runs: list[Run], limit: int, now: float, commit: bool) -> dict[str, tuple[float, float]]:
    """Start waiting runs in submission order as the account's IN_PROGRESS slots free up, up to `now`.

    With commit the starts are kept (a run that started keeps its start even if the limit changes later);
    without, this only predicts (start, end) for every run that has not started.
    """
    busy = [r.end for r in runs if r.start is not None]
    heapq.heapify(busy)
    floor = max((r.start for r in runs if r.start is not None), default=0.0)
    planned: dict[str, tuple[float, float]] = {}
    for run in runs:
        if run.start is not None or run.end is not None:
            continue
        at = max(run.ready, floor)
        while True:  # wait for a free slot: drop the runs that have ended by `at`, else wait for the next end
            while busy and busy[0] <= at:
                heapq.heappop(busy)
            if len(busy) < max(1, limit):
                break
            at = busy[0]
        deadline = run.created + run.start_timeout if run.start_timeout else math.inf
        if at > deadline:  # waited past X-Fal-Request-Timeout: it ends without taking a slot
            if commit and deadline <= now:
                run.end, run.timed_out = deadline, True
            planned[run.id] = (deadline, deadline)
            continue
        if at > now:
            break
        planned[run.id] = (at, at + run.run_s)
        heapq.heappush(busy, at + run.run_s)
        floor = at
        if commit:
            run.start, run.end = at, at + run.run_s
    return planned


def _black(width: int, height: int, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format=media.IMAGE_FORMATS[fmt])
    return buffer.getvalue()


def _bearer_key(request: Request) -> str | Response:
    """The key id of a valid `Authorization: Key id:secret`, or fal's 401."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if not scheme:
        return _request_error(401, "Missing authorization header", None)
    if scheme.lower() != "key" or ":" not in key:
        return _request_error(401, "Invalid Key Authorization header format. Expected '<key_id>:<key_secret>'.",
                              None)  # fmt: skip
    if not KEY_SHAPE.match(key.strip()):
        return _request_error(401, "No user found for Key ID and Secret", None)
    return key.split(":", 1)[0]


def router(sim: Simulator) -> APIRouter:
    limits = Limits()
    accounts: dict[str, Account] = {}

    def forget() -> None:  # a reset starts every account afresh
        with lock:
            vars(limits).update(vars(Limits()))
            accounts.clear()

    sim.on_reset(forget)
    by_id: dict[str, tuple[str, Run]] = {}  # request id → (key id of its account, run)
    webhooks: set[asyncio.Task[None]] = set()
    lock = threading.Lock()
    hosted = Hosted(sim, PREFIX, gone=lambda: JSONResponse({"detail": "Not Found"}, status_code=404))
    api = APIRouter()
    hosted.route(api)

    def account(key_id: str) -> Account:
        return accounts.setdefault(key_id, Account(balance_usd=limits.balance_usd))

    def urls(base: str, run: Run) -> dict[str, str]:
        root = f"{base}{PREFIX}/{app_path(run.model_id)}/requests/{run.id}"
        return {"request_id": run.id, "response_url": root, "status_url": root + "/status",
                "cancel_url": root + "/cancel"}  # fmt: skip

    def new_run(model_id: str, body: dict[str, Any], request: Request) -> Run:
        clip = None
        if model_id in VIDEO_MODELS:
            video = VIDEO_MODELS[model_id]
            issues, clip = validate_video(video, body)
            latency_s, size = video.latency_s, (clip.width, clip.height) if clip else (0, 0)
        else:
            spec = MODELS[model_id]
            issues, source = validate(spec, body)
            latency_s, size = spec.latency_s, (0, 0) if issues else output_size(spec, body, source)
        fault = None
        if not issues:  # only a valid input gets as far as generating (or being moderated)
            fault = sim.draw(Fault.failed, Fault.moderation, Fault.moderation_output, Fault.expired)
        latency = sim.latency(latency_s)
        refused = issues or fault is Fault.moderation
        timeout = request.headers.get("x-fal-request-timeout")
        seed = body.get("seed") if _is_int(body.get("seed")) else sim.random.randrange(2**31)
        return Run(
            id=str(uuid.uuid4()), model_id=model_id, body=body, created=time.monotonic(),
            run_s=latency * REFUSED_SHARE if refused else latency, fault=fault, issues=issues,
            size=size, seed=seed, start_timeout=float(timeout) if timeout else None, clip=clip,
        )  # fmt: skip

    def price(run: Run) -> float:
        if run.issues or run.fault is Fault.failed:  # 5xx failures are not billed
            return 0.0
        if run.clip is not None:
            return video_price(VIDEO_MODELS[run.model_id], run.body, run.clip)
        spec, count = MODELS[run.model_id], run.body.get("num_images", 1)
        return count * (spec.usd_per_image or spec.usd_per_mp * run.size[0] * run.size[1] / 1e6)

    async def body_of(request: Request) -> dict[str, Any] | Response:
        try:
            body = await request.json()
        except ValueError:
            return _model_error([{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}])
        if not isinstance(body, dict):
            return _model_error([{"loc": ["body"], "msg": "Input should be a valid dictionary", "type":
                                  "dict_type", "input": body}])  # fmt: skip
        return body

    def outcome(run: Run, base: str, headers: dict[str, str]) -> Response:
        """The result GET (or sync answer) of a finished run: its output, or the error it ended with."""
        if run.cancelled:
            return _request_error(499, "Request cancelled", "client_cancelled", **headers)
        if run.timed_out:
            return _request_error(504, "Request timed out", "request_timeout",
                                  **{"X-Fal-Request-Timeout-Type": "user"}, **headers)  # fmt: skip
        if run.issues:
            return _model_error(run.issues)
        if run.fault is Fault.moderation:
            flagged = _issue("prompt", "content_policy_violation", FLAGGED, run.body.get("prompt"))
            return _model_error([flagged])
        if run.fault is Fault.failed:
            return _request_error(500, "Internal Server Error", "runner_server_error", **headers)
        if run.clip is not None:
            if video_flagged(run):  # (u) a flagged clip is not handed out: a general (body-wide) policy error
                return _model_error(
                    [{**_issue("body", "content_policy_violation", FLAGGED_VIDEO), "loc": ["body"]}]
                )
            return JSONResponse(video_result(run, run.clip, base), headers=headers)
        return JSONResponse(result(run, base), headers=headers)

    def video_flagged(run: Run) -> bool:
        return run.fault is Fault.moderation_output and run.body.get("enable_safety_checker", True)

    def video_result(run: Run, clip: Clip, base: str) -> dict[str, Any]:
        name = f"{uuid.uuid4().hex}_output.mp4"
        with lock:  # the file is made once, whichever GET comes first
            if not run.files:
                prompt = run.body.get("prompt", "")

                def make() -> bytes:
                    return media.clip(prompt, clip.width, clip.height, clip.duration_s, clip.fps, clip.start)

                shape = (VENDOR, "video", clip.width, clip.height, clip.duration_s, clip.fps)
                hosted.put(name, make, "video/mp4", shape=shape, ready_at=min(run.end, time.monotonic()),
                           fault=run.fault)  # fmt: skip
                run.files.append(name)
        (name,) = run.files
        video = {"url": f"{base}{PREFIX}{MEDIA_PATH}/{name}", "content_type": "video/mp4", "file_name": name}
        return {"video": video, "seed": run.seed}

    def result(run: Run, base: str) -> dict[str, Any]:
        width, height = run.size
        flagged = run.fault is Fault.moderation_output and run.body.get("enable_safety_checker", True)
        prompt = run.body.get("prompt", "")
        with lock:  # the files are made once, whichever GET comes first
            for i in range(len(run.files), run.body.get("num_images", 1)):
                name = f"{uuid.uuid4().hex}_{i}.{'jpg' if run.fmt == 'jpeg' else 'png'}"

                def make(i: int = i) -> bytes:
                    if flagged:  # fal's safety checker blacks out what it flags
                        return _black(width, height, run.fmt)
                    return media.still(f"{prompt} #{i}" if i else prompt, width, height, run.fmt)

                hosted.put(name, make, FORMATS[run.fmt], shape=(VENDOR, width, height, run.fmt, flagged, i),
                           ready_at=min(run.end, time.monotonic()), fault=run.fault)  # fmt: skip
                run.files.append(name)
        images = []
        for name in run.files:
            url = f"{base}{PREFIX}{MEDIA_PATH}/{name}"
            if run.body.get("sync_mode"):  # the media inline as a data URI, as fal's sync_mode does
                data = hosted.bytes_of(name) or b""
                url = f"data:{FORMATS[run.fmt]};base64,{base64.b64encode(data).decode('ascii')}"
            images.append({"url": url, "width": width, "height": height, "content_type": FORMATS[run.fmt]})
        return {
            "images": images,
            "timings": {"inference": round(run.run_s * (1 - DISPATCH_SHARE), 3)},
            "seed": run.seed,
            "has_nsfw_concepts": [bool(flagged)] * len(images),
            "prompt": prompt,
        }

    def status_body(run: Run, now: float, base: str, logs: bool) -> dict[str, Any]:
        state = run.status(now)
        body: dict[str, Any] = {"status": state, **urls(base, run), "logs": None, "metrics": {}}
        if state == "IN_QUEUE":
            waiting = [r for r in account(by_id[run.id][0]).runs if r.start is None and r.end is None]
            body["queue_position"] = waiting.index(run)
            return body
        if logs and run.start is not None:
            body["logs"] = run_logs(run, min(now, run.end))
        if state == "COMPLETED":
            body["metrics"] = (
                {"inference_time": round(run.end - run.start, 3)} if run.start is not None else {}
            )
            body["error"], body["error_type"] = completed_error(run)
        return body

    def run_logs(run: Run, until: float) -> list[dict[str, Any]]:
        image = MODELS.get(run.model_id)
        steps = (
            run.body.get("num_inference_steps") or (image.steps if image and image.steps else (0, 0, 20))[2]
        )
        done = int(steps * max(0.0, min(1.0, (until - run.start) / max(run.run_s, 1e-9))))
        stamp = datetime.now(UTC).isoformat()
        return [{"message": f"{k}/{steps} steps", "level": "INFO", "source": "user", "timestamp": stamp}
                for k in range(0, done + 1, max(1, steps // 4))]  # fmt: skip

    def completed_error(run: Run) -> tuple[str | None, str | None]:
        """(u) What a COMPLETED status says of a run that ended in an error; None for a good one."""
        if run.cancelled:
            return "Request cancelled", "client_cancelled"
        if run.timed_out:
            return "Request timed out", "request_timeout"
        if run.issues:
            return run.issues[0]["msg"], None
        if run.fault is Fault.moderation:
            return FLAGGED, None
        if run.fault is Fault.failed:
            return "Internal Server Error", "runner_server_error"
        if run.clip is not None and video_flagged(run):
            return FLAGGED_VIDEO, None
        return None, None

    async def notify(run: Run, key_id: str, base: str, url: str) -> None:
        """POST the run's outcome to its fal_webhook once it has ended, as fal does: status OK with the result
        as payload, or ERROR with the error body; a refused post is sent again (u: fal retries 10 times over
        ~2 h, here WEBHOOK_ATTEMPTS times WEBHOOK_PAUSE_S apart)."""
        while True:
            with lock:
                _schedule(account(key_id).runs, limits.concurrency, time.monotonic(), commit=True)
                ended = run.status(time.monotonic()) == "COMPLETED"
            if ended:
                break
            await asyncio.sleep(0.02)
        answer = await run_in_threadpool(outcome, run, base, {})
        payload = json.loads(bytes(answer.body))
        ok = answer.status_code == 200
        body = {"request_id": run.id, "gateway_request_id": run.id, "status": "OK" if ok else "ERROR",
                "payload": payload, "error": None if ok else f"Invalid status code: {answer.status_code}"}  # fmt: skip
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S, verify=outbound_tls()) as http:
            for attempt in range(WEBHOOK_ATTEMPTS):
                if attempt:
                    await asyncio.sleep(WEBHOOK_PAUSE_S)
                try:
                    if (await http.post(url, json=body)).is_success:
                        return
                except httpx.HTTPError:
                    pass  # an unreachable receiver is its own problem; the run is done either way

    def find(key_id: str, app: str, request_id: str) -> Run | None:
        """The caller's run, polled at its owner/alias path (a full model path is not a request URL)."""
        owner, run = by_id.get(request_id, ("", None))
        return run if run is not None and owner == key_id and app_path(run.model_id) == app else None

    @api.get("/_sim/limits")
    async def get_limits() -> dict[str, Any]:
        return {"concurrency": limits.concurrency}

    @api.post("/_sim/limits")
    async def set_limits(changes: dict[str, Any]) -> dict[str, Any]:
        if "concurrency" in changes:
            limits.concurrency = max(1, int(changes["concurrency"]))
        return {"concurrency": limits.concurrency}

    @api.get("/_sim/billing")
    async def get_billing() -> dict[str, Any]:
        return {
            "balance_usd": limits.balance_usd,
            "accounts": {k: a.balance_usd for k, a in accounts.items()},
        }

    @api.post("/_sim/billing")
    async def set_billing(changes: dict[str, Any]) -> dict[str, Any]:
        """Set every account's balance (and new accounts'): 0 or less locks them, as fal does."""
        with lock:
            limits.balance_usd = float(changes.get("balance_usd", limits.balance_usd))
            for acct in accounts.values():
                acct.balance_usd = limits.balance_usd
        return await get_billing()

    @api.post("/run/{model_id:path}")
    async def run_sync(model_id: str, request: Request) -> Response:
        """fal.run: the same input, answered with the result (or the error) when the run ends."""
        key_id = _bearer_key(request)
        if isinstance(key_id, Response):
            return key_id
        if model_id not in MODELS and model_id not in VIDEO_MODELS:
            return _request_error(404, f"Application '{model_id}' not found", None)
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        with lock:
            acct = account(key_id)
            if acct.balance_usd <= 0:
                return _request_error(403, EXHAUSTED, None)
            run = new_run(model_id, body, request)
            run.start, run.end = run.created, run.created + run.run_s
            acct.balance_usd -= price(run)
            created = time.time()
            sim.record_job(VENDOR, run.id, created, created + run.run_s, started=created)
        await asyncio.sleep(run.run_s)
        base = str(request.base_url).rstrip("/")
        return await run_in_threadpool(outcome, run, base, {"x-fal-request-id": run.id})

    @api.get("/{app:path}/requests/{request_id}/status")
    async def status(app: str, request_id: str, request: Request, logs: str = "0") -> Response:
        key_id = _bearer_key(request)
        if isinstance(key_id, Response):
            return key_id
        now = time.monotonic()
        with lock:
            run = find(key_id, app, request_id)
            if run is None:
                return _request_error(404, "Request not found", None)
            _schedule(account(key_id).runs, limits.concurrency, now, commit=True)
            body = status_body(
                run, now, str(request.base_url).rstrip("/"), logs.lower() in ("1", "true", "yes")
            )
        return JSONResponse(body, headers={"x-fal-request-id": run.id})

    @api.get("/{app:path}/requests/{request_id}")
    def response(app: str, request_id: str, request: Request) -> Response:
        # A sync route: sync_mode renders the images inline, off the event loop.
        key_id = _bearer_key(request)
        if isinstance(key_id, Response):
            return key_id
        now = time.monotonic()
        with lock:
            run = find(key_id, app, request_id)
            if run is None:
                return _request_error(404, "Request not found", None)
            _schedule(account(key_id).runs, limits.concurrency, now, commit=True)
            if run.status(now) != "COMPLETED":
                return _request_error(
                    400, "Request is still in progress", None, **{"x-fal-request-id": run.id}
                )
        return outcome(run, str(request.base_url).rstrip("/"), {"x-fal-request-id": run.id})

    @api.put("/{app:path}/requests/{request_id}/cancel")
    async def cancel(app: str, request_id: str, request: Request) -> Response:
        key_id = _bearer_key(request)
        if isinstance(key_id, Response):
            return key_id
        now = time.monotonic()
        with lock:
            run = find(key_id, app, request_id)
            if run is None:
                return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
            _schedule(account(key_id).runs, limits.concurrency, now, commit=True)
            state = run.status(now)
            if state == "COMPLETED":
                return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
            # Queued: fal removes it. Running: the runner is told to stop; it ends now and frees its slot.
            run.cancelled, run.end = True, now
        if state == "IN_QUEUE":
            return JSONResponse({"status": "OK"})
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    @api.post("/{model_id:path}")
    async def submit(model_id: str, request: Request) -> Response:
        """queue.fal.run: accept the request and answer its handle; the runner judges the input later."""
        key_id = _bearer_key(request)
        if isinstance(key_id, Response):
            return key_id
        if model_id not in MODELS and model_id not in VIDEO_MODELS:
            return _request_error(404, f"Application '{model_id}' not found", None)
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        now = time.monotonic()
        with lock:
            acct = account(key_id)
            if acct.balance_usd <= 0:
                return _request_error(403, EXHAUSTED, None)
            run = new_run(model_id, body, request)
            acct.balance_usd -= price(run)
            acct.runs.append(run)
            by_id[run.id] = (key_id, run)
            start, end = _schedule(acct.runs, limits.concurrency, math.inf, commit=False).get(
                run.id, (run.created, run.created + run.run_s)
            )
            _schedule(acct.runs, limits.concurrency, now, commit=True)
            # The run's creation on the wall clock, read now: `now` came before the lock and new_run (which
            # decodes inline images), and counting from it logged the run late by that time.
            wall = time.time() - (time.monotonic() - run.created)
            sim.record_job(VENDOR, run.id, wall, wall + end - run.created, started=wall + start - run.created)
            waiting = [r for r in acct.runs if r.start is None and r.end is None]
        base = str(request.base_url).rstrip("/")
        if webhook := request.query_params.get("fal_webhook"):
            task = asyncio.create_task(notify(run, key_id, base, webhook))
            webhooks.add(task)  # kept until done: the loop holds tasks weakly
            task.add_done_callback(webhooks.discard)
        handle = {"status": "IN_QUEUE", **urls(base, run), "logs": None, "metrics": {},
                  "queue_position": waiting.index(run) if run in waiting else 0}  # fmt: skip
        return JSONResponse(handle, headers={"x-fal-request-id": run.id})

    return api
