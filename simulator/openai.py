"""OpenAI Images as the `openai` 3.63 SDK calls it: `POST /v1/images/generations` (JSON) and
`POST /v1/images/edits` (multipart), for the current GPT image models.

Sources: ../shared/providers/openai.md (images part) and the installed SDK's types (image_generate_params,
image_edit_params, images_response, image_model), which win where the two disagree. The API is synchronous:
the request is held for the model's latency, then answered with `data[].b64_json` images (never URLs) of
exactly the asked size and format, `usage` in tokens and the `size`/`quality`/`background`/`output_format`
echoes. Edits decode every uploaded image and really work on the first one (the mask's transparent pixels are
repainted; without a mask the render is blended over it).

Faults: failed → 500 `server_error`; moderation → 400 `moderation_blocked` with
`moderation_details.moderation_stage: "input"`; moderation_output → the same 400 with stage `"output"`
(OpenAI has no 200-with-a-flag answer: a blocked output is refused like a blocked prompt); expired has no
counterpart (the images come inline, there is no link to expire). `POST {PREFIX}/_sim/quota
{"exhausted": true}` makes every call a 429 `insufficient_quota`. Retired models (`gpt-image-1`, `dall-e-2`,
`dall-e-3`) get the 404 `model_not_found` "has been deprecated" answer OpenAI gives for shut-down models.

Unverified (u): the wording of most validation messages and codes (OpenAI's usual `invalid_value`,
`unknown_parameter` … shapes), the mask/markup rules' messages, the token counts of sizes other than the
three standard ones (scaled by area), latencies, the rate-limit header numbers, and the
`gpt-image-2.6-*` models' options (the SDK names them but lists them with neither custom sizes nor
xhigh/max, so they get the standard set). Not simulated: streaming (`stream: true` is refused), GIF and SVG
output (refused as for a project without those previews), JSON edits with `images: [{image_url}]`.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from PIL import Image, ImageDraw
from starlette.concurrency import run_in_threadpool

from simulator import media
from simulator.core import Fault, Simulator
from simulator.jobs import start_job

VENDOR = "openai"
PREFIX = "/openai/v1"
#: Project keys (`sk-proj-…`), service-account keys and legacy `sk-…` keys are accepted by their shape.
KEY_PATTERN = re.compile(r"^sk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}$")
SIMULATOR_KEY = "sk-proj-" + "cutroomSimulatorKey0" * 4
API_VERSION = "2020-10-01"
ORGANIZATION = "cutroom-simulator"

STANDARD_SIZES = {"1024x1024": (1024, 1024), "1536x1024": (1536, 1024), "1024x1536": (1024, 1536)}
QUALITIES = ("low", "medium", "high", "auto")
#: gpt-image-2's custom sizes (SDK docstring: multiples of 16, aspect 1:3..3:1, max 3840x2160; the pixel
#: window is the one third-party docs quote from OpenAI's guide (u)).
MAX_EDGE, MIN_PIXELS, MAX_PIXELS, MAX_RATIO = 3840, 655_360, 8_294_400, 3.0
MAX_PROMPT = 32_000
MAX_IMAGES, MAX_IMAGE_BYTES, MAX_MASK_BYTES = 16, 50 * 1024 * 1024, 4 * 1024 * 1024
IMAGE_MIMES = ("image/jpeg", "image/png", "image/webp")
#: Output tokens of a 1024x1024 image by quality (gpt-image-1's published table; xhigh/max extrapolated (u)).
TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160, "xhigh": 8320, "max": 16640}
#: Mean latency by quality before latency_scale (openai.md: 10–60 s, high slowest; xhigh/max (u)).
MEAN_LATENCY_S = {"low": 10.0, "medium": 25.0, "high": 45.0, "xhigh": 70.0, "max": 100.0}
#: Stand-in rate limits for the x-ratelimit-* headers (per minute; not enforced: 429s are the frame's).
LIMIT_REQUESTS, LIMIT_TOKENS = 250, 250_000


@dataclass(frozen=True)
class Model:
    """What one GPT image model accepts beyond the common options, as the SDK's docstrings describe it."""

    custom_sizes: bool = False
    qualities: tuple[str, ...] = QUALITIES
    #: input_fidelity values; empty when the parameter must be omitted (gpt-image-2).
    input_fidelity: tuple[str, ...] = ("high", "low")
    markup: bool = False
    speed: float = 1.0


_V2 = Model(custom_sizes=True, input_fidelity=())
_V25 = Model(custom_sizes=True, qualities=(*QUALITIES, "xhigh", "max"), markup=True)
MODELS: dict[str, Model] = {
    "gpt-image-1-mini": Model(input_fidelity=("low",), speed=0.5),
    "gpt-image-1.5": Model(),
    "gpt-image-2": _V2,
    "gpt-image-2-2026-04-21": _V2,
    "gpt-image-2.5-sunburst": _V25,
    "gpt-image-2.5-sunburst-2026-09-08": _V25,
    "gpt-image-2.5-flare": _V25,
    "gpt-image-2.5-flare-2026-09-08": _V25,
    "gpt-image-2.6-sunburst": Model(),
    "gpt-image-2.6-flare": Model(),
    "chatgpt-image-latest": Model(),
}
#: Shut down per the SDK's ImageModel docstring (dall-e-2/3 on 2026-05-12, gpt-image-1 on 2026-10-23).
RETIRED = ("gpt-image-1", "dall-e-2", "dall-e-3")
COMMON_FIELDS = {
    "prompt", "model", "n", "size", "quality", "background", "output_format", "output_compression",
    "stream", "partial_images", "complexity", "frame_count", "frame_duration_ms", "svg", "user",
    "safety_identifier",
}  # fmt: skip
GENERATE_FIELDS = COMMON_FIELDS | {"moderation"}
EDIT_FIELDS = COMMON_FIELDS | {"input_fidelity"}
EDIT_FILES = ("image", "image[]", "mask", "markup")
INT_FIELDS = ("n", "output_compression", "partial_images", "frame_count", "frame_duration_ms")
NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)
NO_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more information on "
    "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)


class ApiError(Exception):
    """An answer in OpenAI's error shape: {"error": {"message", "type", "param", "code", …}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        **extra: Any,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type, self.extra = (
            status, message, param, code, type, extra,
        )  # fmt: skip

    def response(self, headers: dict[str, str] | None = None) -> Response:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return JSONResponse({"error": {**error, **self.extra}}, status_code=self.status, headers=headers)


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """The frame's injected faults in OpenAI's shape: a 429 rate_limit_exceeded (with retry-after and
    spent x-ratelimit-* headers), or a 5xx server_error."""
    headers = {"x-request-id": _request_id(), "openai-version": API_VERSION}
    if status == 429:
        wait = retry_after or 1.0
        headers |= {"retry-after": f"{math.ceil(wait)}", **_limit_headers(LIMIT_REQUESTS, wait, 0)}
        message = (
            f"Rate limit reached for images in organization {ORGANIZATION} on requests per min (RPM): "
            f"Limit {LIMIT_REQUESTS}, Used {LIMIT_REQUESTS}, Requested 1. Please try again in {wait:g}s."
        )
        return ApiError(429, message, type="requests", code="rate_limit_exceeded").response(headers)
    if status == 503:
        message = "The server is overloaded or not ready yet."
    return ApiError(status, message, type="server_error").response(headers)


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def _duration(seconds: float) -> str:
    """A reset time as OpenAI writes it: 20ms, 1s, 6m0s."""
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def _limit_headers(used_requests: int, reset_s: float, used_tokens: int) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(LIMIT_REQUESTS),
        "x-ratelimit-remaining-requests": str(max(0, LIMIT_REQUESTS - used_requests)),
        "x-ratelimit-reset-requests": _duration(reset_s),
        "x-ratelimit-limit-tokens": str(LIMIT_TOKENS),
        "x-ratelimit-remaining-tokens": str(max(0, LIMIT_TOKENS - used_tokens)),
        "x-ratelimit-reset-tokens": _duration(reset_s),
    }


class OpenAIRoute(APIRoute):
    """Gives every answer a request id (also quoted in moderation messages) and OpenAI's headers, and turns
    an ApiError raised by a route or its auth dependency into OpenAI's error body."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            started = time.monotonic()
            request.state.request_id = _request_id()
            try:
                response = await handler(request)
            except ApiError as exc:
                response = exc.response()
            response.headers["x-request-id"] = request.state.request_id
            response.headers["openai-version"] = API_VERSION
            response.headers["openai-organization"] = ORGANIZATION
            response.headers["openai-processing-ms"] = str(round((time.monotonic() - started) * 1000))
            return response

        return guarded


def authorised(request: Request) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, NO_KEY)
    key = key.strip()
    if not KEY_PATTERN.match(key):
        shown = f"{key[:8]}{'*' * (len(key) - 12)}{key[-4:]}" if len(key) > 12 else "*" * len(key)
        raise ApiError(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )


@dataclass
class Order:
    """A validated request: what to render and how to answer."""

    model: str
    prompt: str
    n: int
    width: int
    height: int
    quality: str
    background: str
    output_format: str
    compression: int
    safety_identifier: str | None = None
    images: list[bytes] = field(default_factory=list)
    mask: bytes | None = None


def _choices(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 1 else quoted[0]


def _invalid_value(param: str, value: Any, allowed: tuple[str, ...]) -> ApiError:
    return ApiError(
        400, f"Invalid value: '{value}'. Supported values are: {_choices(allowed)}.", param=param,
        code="invalid_value",
    )  # fmt: skip


def _enum(body: dict[str, Any], param: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(param)
    if value is None:
        return default
    if value not in allowed:
        raise _invalid_value(param, value, allowed)
    return value


def _integer(body: dict[str, Any], param: str, low: int, high: int, default: int) -> int:
    value = body.get(param)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(
            400, f"Invalid type for '{param}': expected an integer, but got {_kind(value)} instead.",
            param=param, code="invalid_type",
        )  # fmt: skip
    if value < low:
        raise ApiError(
            400, f"Invalid '{param}': integer below minimum value. Expected a value >= {low}, but got "
            f"{value} instead.", param=param, code="integer_below_min_value",
        )  # fmt: skip
    if value > high:
        raise ApiError(
            400, f"Invalid '{param}': integer above maximum value. Expected a value <= {high}, but got "
            f"{value} instead.", param=param, code="integer_above_max_value",
        )  # fmt: skip
    return value


def _kind(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", float: "a decimal", list: "an array", dict: "an object"}
    return names.get(type(value), "a value")


def _string(body: dict[str, Any], param: str, max_length: int | None = None) -> str | None:
    value = body.get(param)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(
            400, f"Invalid type for '{param}': expected a string, but got {_kind(value)} instead.",
            param=param, code="invalid_type",
        )  # fmt: skip
    if max_length is not None and len(value) > max_length:
        raise ApiError(
            400, f"Invalid '{param}': string too long. Expected a string with maximum length {max_length}, "
            f"but got a string with length {len(value)} instead.", param=param, code="string_above_max_length",
        )  # fmt: skip
    return value


def check_model(body: dict[str, Any]) -> tuple[str, Model]:
    name = body.get("model")
    if name is None:
        # The SDK says "Specify a model explicitly": the old default (dall-e-2) is retired.
        raise ApiError(
            400, "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    if name in RETIRED:
        raise ApiError(
            404, f"The model `{name}` has been deprecated, learn more here: "
            "https://platform.openai.com/docs/deprecations", code="model_not_found",
        )  # fmt: skip
    if name not in MODELS:
        raise ApiError(
            404, f"The model `{name}` does not exist or you do not have access to it.", code="model_not_found"
        )
    return name, MODELS[name]


def check_size(value: Any, spec: Model, source: tuple[int, int] | None) -> tuple[int, int]:
    """The output size: a standard one, `auto` (1024x1024; for an edit the standard size nearest the first
    image's aspect (u)), or for the gpt-image-2 family any WxH inside the documented limits."""
    if value is None or value == "auto":
        if source is None:
            return 1024, 1024
        return min(STANDARD_SIZES.values(), key=lambda s: abs(math.log(s[0] / s[1] * source[1] / source[0])))
    match = re.fullmatch(r"(\d{1,5})x(\d{1,5})", value) if isinstance(value, str) else None
    if match is None or (value not in STANDARD_SIZES and not spec.custom_sizes):
        raise _invalid_value("size", value, (*STANDARD_SIZES, "auto"))
    width, height = int(match.group(1)), int(match.group(2))
    if value in STANDARD_SIZES:
        return STANDARD_SIZES[value]
    problem = None
    if width % 16 or height % 16:
        problem = "width and height must both be multiples of 16"
    elif max(width, height) > MAX_EDGE:
        problem = f"the longest edge must be at most {MAX_EDGE}px"
    elif max(width, height) / min(width, height) > MAX_RATIO:
        problem = "the aspect ratio must be between 1:3 and 3:1"
    elif not MIN_PIXELS <= width * height <= MAX_PIXELS:
        problem = f"the total pixel count must be between {MIN_PIXELS:,} and {MAX_PIXELS:,}"
    if problem:
        raise ApiError(400, f"Invalid size '{value}': {problem}.", param="size", code="invalid_value")
    return width, height


def check_order(body: dict[str, Any], known: set[str], source: tuple[int, int] | None = None) -> Order:
    """The checks generations and edits share, in the order OpenAI reports them (u)."""
    for name in body:
        if name not in known:
            # GPT image models drop DALL·E's response_format and style: they are unknown parameters now.
            raise ApiError(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    prompt = _string(body, "prompt", MAX_PROMPT)
    if prompt is None:
        raise ApiError(
            400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter"
        )
    if not prompt:
        raise ApiError(
            400, "Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty "
            "string instead.", param="prompt", code="empty_string",
        )  # fmt: skip
    model, spec = check_model(body)
    if body.get("stream"):
        raise ApiError(400, "The simulator does not simulate streaming image responses.", param="stream")
    n = _integer(body, "n", 1, 10, 1)
    width, height = check_size(body.get("size"), spec, source)
    quality = _enum(body, "quality", spec.qualities, "auto")
    background = _enum(body, "background", ("transparent", "opaque", "auto"), "auto")
    # gif and svg need preview access this (simulated) project does not have.
    output_format = _enum(body, "output_format", ("png", "jpeg", "webp"), "png")
    for option, needs in (("frame_count", "gif"), ("frame_duration_ms", "gif"), ("svg", "svg")):
        if body.get(option) is not None:
            message = f"'{option}' is only supported with output_format={needs}."
            raise ApiError(400, message, param=option, code="invalid_value")
    if background == "transparent" and output_format == "jpeg":
        raise ApiError(
            400, "Transparent background is only supported with the png and webp output formats.",
            param="background", code="invalid_value",
        )  # fmt: skip
    if body.get("output_compression") is not None and output_format == "png":
        raise ApiError(
            400, "output_compression is only supported with the jpeg and webp output formats.",
            param="output_compression", code="invalid_value",
        )  # fmt: skip
    compression = _integer(body, "output_compression", 0, 100, 100)
    _integer(body, "partial_images", 0, 3, 0)
    _enum(body, "complexity", ("low", "medium", "high"), "medium")
    _enum(body, "moderation", ("low", "auto"), "auto")
    user = _string(body, "user")
    safety_identifier = _string(body, "safety_identifier", 64) or user or None
    return Order(
        model=model, prompt=prompt, n=n, width=width, height=height,
        # The response echoes what `auto` became (its quality/background types have no "auto") (u).
        quality="high" if quality == "auto" else quality,
        background="opaque" if background == "auto" else background,
        output_format=output_format, compression=compression, safety_identifier=safety_identifier,
    )  # fmt: skip


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


async def multipart(request: Request) -> list[Part]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            400, f"Invalid Content-Type header ({content_type}), expected multipart/form-data. (HINT: If "
            "you're using curl, you can pass -H 'Content-Type: multipart/form-data')",
        )  # fmt: skip
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + await request.body()
    )
    if not message.is_multipart():
        raise ApiError(400, "Could not parse multipart form data.")
    parts = []
    for part in message.get_payload():
        name = part.get_param("name", header="content-disposition")
        if name:
            data = part.get_payload(decode=True) or b""
            parts.append(Part(str(name), part.get_filename(), part.get_content_type(), data))
    return parts


def form_fields(parts: list[Part]) -> dict[str, Any]:
    """The text fields with the SDK's multipart encoding undone: numbers and booleans come as strings."""
    body: dict[str, Any] = {}
    for part in parts:
        if part.filename is not None:
            continue
        name = "svg" if part.name.startswith("svg[") else part.name
        if name in EDIT_FILES:
            raise ApiError(
                400, f"Invalid type for '{name}': expected a file, but got a string instead.", param=name,
                code="invalid_type",
            )  # fmt: skip
        value: Any = part.data.decode("utf-8", "replace")
        if name in INT_FIELDS and re.fullmatch(r"-?\d+", value):
            value = int(value)
        elif name == "stream":
            value = value == "true"
        body[name] = value
    return body


def _format(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def check_image(
    part: Part, index: int, param: str, mimes: tuple[str, ...], max_bytes: int
) -> tuple[int, int]:
    """An upload's declared type, its size and its bytes, as OpenAI refuses each (SDK: png/webp/jpg < 50MB;
    a mask a PNG < 4MB); the decoded size on success."""
    if part.content_type not in mimes:
        raise ApiError(
            400, f"Invalid file '{param}': unsupported mimetype ('{part.content_type}'). Supported file formats "
            f"are {_choices(mimes)}.", param=param, code="unsupported_file_mimetype",
        )  # fmt: skip
    if len(part.data) > max_bytes:
        raise ApiError(
            400, f"Invalid file '{param}': file too large ({len(part.data)} bytes). The maximum is "
            f"{max_bytes // (1024 * 1024)}MB.", param=param, code="file_too_large",
        )  # fmt: skip
    size = media.image_size(part.data)
    wanted = tuple("jpeg" if m == "image/jpeg" else m.removeprefix("image/") for m in mimes)
    if size is None or _format(part.data) not in wanted:
        label = f"image {index}" if param == "image" else param
        raise ApiError(
            400, f"Invalid image file or mode for {label}, please check your image file.", param=None,
            code="invalid_image_file", type="image_generation_user_error",
        )  # fmt: skip
    return size


def check_edit(parts: list[Part]) -> Order:
    """An edit's uploads, then the options it shares with a generation."""
    images = [p for p in parts if p.filename is not None and p.name in ("image", "image[]")]
    files = {p.name: p for p in parts if p.filename is not None}
    for name in files:
        if name not in EDIT_FILES:
            raise ApiError(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    if not images:
        raise ApiError(
            400, "Missing required parameter: 'image'.", param="image", code="missing_required_parameter"
        )
    if len(images) > MAX_IMAGES:
        raise ApiError(
            400, f"Invalid 'image': too many images. Expected at most {MAX_IMAGES}, but got {len(images)} "
            "instead.", param="image", code="array_above_max_length",
        )  # fmt: skip
    sizes = [check_image(p, i, "image", IMAGE_MIMES, MAX_IMAGE_BYTES) for i, p in enumerate(images, 1)]
    body = form_fields(parts)
    order = check_order(body, EDIT_FIELDS, source=sizes[0])
    spec = MODELS[order.model]
    if body.get("input_fidelity") is not None:
        if not spec.input_fidelity:
            raise _unsupported("input_fidelity")
        _enum(body, "input_fidelity", spec.input_fidelity, "low")
    mask, markup = files.get("mask"), files.get("markup")
    if markup is not None:
        if not spec.markup:
            raise _unsupported("markup")
        if mask is not None:
            raise ApiError(400, "markup cannot be combined with mask.", param="markup", code="invalid_value")
    for overlay in (mask, markup):
        if overlay is None:
            continue
        size = check_image(overlay, 1, overlay.name, ("image/png",), MAX_MASK_BYTES)
        with Image.open(io.BytesIO(overlay.data)) as image:
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        if not has_alpha:
            raise ApiError(
                400, f"Invalid {overlay.name} image format - {overlay.name} image missing alpha channel",
                param=overlay.name, code="invalid_image_format",
            )  # fmt: skip
        if size != sizes[0]:
            raise ApiError(
                400, f"Invalid {overlay.name} image: it must have the same dimensions as image 1 "
                f"({sizes[0][0]}x{sizes[0][1]}), got {size[0]}x{size[1]}.", param=overlay.name,
                code="invalid_image_dimensions",
            )  # fmt: skip
    order.images = [p.data for p in images]
    order.mask = mask.data if mask is not None else None
    return order


def _unsupported(param: str) -> ApiError:
    return ApiError(
        400, f"Unsupported parameter: '{param}' is not supported with this model.", param=param,
        code="unsupported_parameter",
    )  # fmt: skip


def _image_tokens(width: int, height: int) -> int:
    """Input tokens of a reference image, by GPT-4o's tile rule (fit in 2048², short side 768, 170 per 512
    tile + 85) (u)."""
    scale = min(1.0, 2048 / max(width, height))
    scale *= min(1.0, 768 / (min(width, height) * scale))
    tiles = math.ceil(width * scale / 512) * math.ceil(height * scale / 512)
    return 85 + 170 * tiles


def usage(order: Order) -> dict[str, Any]:
    text = max(1, math.ceil(len(order.prompt) / 4))
    images = sum(_image_tokens(*media.image_size(data) or (1024, 1024)) for data in order.images)
    output = order.n * round(TOKENS_1024[order.quality] * order.width * order.height / 1024**2)
    return {
        "input_tokens": text + images,
        "input_tokens_details": {"text_tokens": text, "image_tokens": images},
        "output_tokens": output,
        "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
        "total_tokens": text + images + output,
    }


def render(order: Order, index: int) -> bytes:
    """One output image: a still of the prompt at exactly the asked size and format; an edit works on the
    first image (the mask's transparent pixels repainted, else the render blended over it)."""
    size = (order.width, order.height)
    png = media.still(f"{order.prompt} #{index + 1}" if order.n > 1 else order.prompt, *size, "png")
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    if order.images:
        source = Image.open(io.BytesIO(order.images[0])).convert("RGBA").resize(size)
        if order.mask is not None:
            alpha = Image.open(io.BytesIO(order.mask)).convert("RGBA").getchannel("A").resize(size)
            image = Image.composite(image, source, alpha.point(lambda a: 255 if a == 0 else 0))
        else:
            image = Image.blend(source, image, 0.5)
    if order.background == "transparent":
        # A cut-out: the subject on an oval, the rest fully transparent.
        cutout = Image.new("L", size, 0)
        ImageDraw.Draw(cutout).ellipse(
            (size[0] // 8, size[1] // 8, size[0] * 7 // 8, size[1] * 7 // 8), fill=255
        )
        image.putalpha(cutout)
    else:
        image = image.convert("RGB")
    buffer = io.BytesIO()
    if order.output_format == "png":
        image.save(buffer, format="PNG", compress_level=1)
    else:
        if order.output_format == "jpeg":
            image = image.convert("RGB")
        image.save(buffer, format=media.IMAGE_FORMATS[order.output_format], quality=order.compression)
    return buffer.getvalue()


@dataclass
class State:
    quota_exhausted: bool = False
    #: The current minute's rate-limit window: its start and what it spent.
    window_start: float = 0.0
    requests: int = 0
    tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spend(self, tokens: int) -> dict[str, str]:
        with self.lock:
            now = time.monotonic()
            if now - self.window_start >= 60:
                self.window_start, self.requests, self.tokens = now, 0, 0
            self.requests += 1
            self.tokens += tokens
            return _limit_headers(self.requests, 60 - (now - self.window_start), self.tokens)


def router(sim: Simulator) -> APIRouter:
    state = State()

    sim.keeps_fresh(state, State)  # a reset starts the account afresh
    api = APIRouter(route_class=OpenAIRoute, dependencies=[Depends(authorised)])
    control = APIRouter(route_class=OpenAIRoute)

    def check_quota() -> None:
        if state.quota_exhausted:
            raise ApiError(429, NO_QUOTA, type="insufficient_quota", code="insufficient_quota")

    def moderation_blocked(request: Request, stage: str) -> ApiError:
        category = sim.random.choice(["sexual", "violence", "harassment", "self-harm"])
        return ApiError(
            400, "Your request was rejected by the safety system. If you believe this is an error, contact us "
            f"at help.openai.com and include the request ID {request.state.request_id}. "
            f"safety_violations=[{category}].", type="image_generation_user_error", code="moderation_blocked",
            moderation_details={"moderation_stage": stage, "categories": [category]},
        )  # fmt: skip

    async def answer(request: Request, order: Order) -> Response:
        """Hold the request for the model's time, then answer with the images or the drawn fault."""
        mean = MEAN_LATENCY_S[order.quality] * MODELS[order.model].speed * (1 + 0.25 * (order.n - 1))
        summary = {"model": order.model, "size": f"{order.width}x{order.height}", "n": order.n}
        job = start_job(
            sim, VENDOR, mean, summary, faults=(Fault.failed, Fault.moderation, Fault.moderation_output),
            job_id=request.state.request_id,
        )  # fmt: skip
        if job.fault is Fault.moderation:
            await asyncio.sleep(0.1 * job.latency)  # the prompt is screened before anything is drawn
            raise moderation_blocked(request, "input")
        await asyncio.sleep(job.latency)
        if job.fault is Fault.failed:
            raise ApiError(
                500, "The server had an error processing your request. Sorry about that! You can retry your "
                "request, or contact us through our help center at help.openai.com if you keep seeing this "
                f"error. (Please include the request ID {request.state.request_id} in your email.)",
                type="server_error", code="server_error",
            )  # fmt: skip
        if job.fault is Fault.moderation_output:
            raise moderation_blocked(request, "output")
        shape = (VENDOR, order.width, order.height, order.output_format, order.background, order.compression,
                 bool(order.images), order.mask is not None)  # fmt: skip
        images = await run_in_threadpool(
            lambda: [sim.media((*shape, i), partial(render, order, i)) for i in range(order.n)]
        )
        tokens = usage(order)
        body: dict[str, Any] = {
            "created": int(time.time()),
            "data": [{"b64_json": base64.b64encode(data).decode("ascii")} for data in images],
            "background": order.background,
            "output_format": order.output_format,
            "quality": order.quality,
            "size": f"{order.width}x{order.height}",
            "usage": tokens,
        }
        if order.safety_identifier:
            body["safety_identifier"] = order.safety_identifier
        return JSONResponse(body, headers=state.spend(tokens["total_tokens"]))

    @api.post("/images/generations")
    async def generations(request: Request) -> Response:
        check_quota()
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(
                400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent "
                "was not valid JSON.)",
            )  # fmt: skip
        return await answer(request, check_order(body, GENERATE_FIELDS))

    @api.post("/images/edits")
    async def edits(request: Request) -> Response:
        check_quota()
        return await answer(request, check_edit(await multipart(request)))

    @control.get("/_sim/quota")
    async def get_quota() -> dict[str, bool]:
        return {"exhausted": state.quota_exhausted}

    @control.post("/_sim/quota")
    async def set_quota(changes: dict[str, Any]) -> dict[str, bool]:
        state.quota_exhausted = bool(changes.get("exhausted", state.quota_exhausted))
        return {"exhausted": state.quota_exhausted}

    combined = APIRouter()
    combined.include_router(api)
    combined.include_router(control)
    return combined
