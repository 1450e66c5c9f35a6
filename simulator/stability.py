"""Stability AI's v2beta Stable Image Generate (Ultra, Core, SD 3.5) and the v1 balance, as the API answers.

No official Python SDK speaks v2beta (`stability-sdk` is the retired gRPC v1): clients send multipart.

Covered: `POST /v2beta/stable-image/generate/{ultra,core,sd3}` (multipart/form-data only; a JSON body is a
400), `Authorization: Bearer sk-…`, the `accept` header (`image/*` → the image's bytes with `finish-reason`
and `seed` headers; `application/json` → `{"image": base64, "finish_reason", "seed"}` typed
`application/json; type=image/<fmt>`), field validation as the official OpenAPI describes it,
image-to-image (Ultra with `image` + `strength`; SD 3.5 with `mode=image-to-image`), and
`GET /v1/user/balance` → `{"credits": float}`. Errors are Stability's `{"id", "name", "errors": [...]}`
(v1's are `{"id", "name", "message"}`). The credit balance is set through
`POST /stability/_sim/credits {"credits": n}`; a request it cannot pay is Stability's 402.

Outcomes (decided at the request, after a latency drawn around the service's mean): Fault.moderation →
403 `content_moderation` (nothing charged); Fault.moderation_output → 200 with finish reason
CONTENT_FILTERED and a blurred image (charged: the API calls it a successful generation, (u));
Fault.failed → 500 `internal_error`. Fault.expired does not apply: the image is in the response.

Sources: the official OpenAPI (api.stability.ai/v2alpha/openapi, as vendored by tryAGI/StabilityAI):
fields, enums, ranges, "1 megapixel" for Ultra and SD 3.5 ("the default resolution is 1024x1024"),
"1.5 megapixels" for Core, credits, the 403/413/429/500 example bodies, the v1 401 body; public client code
for the 402 body (`payment_required`, "You lack sufficient credits…") and the `sk-` + 48 character keys.

Unverified (u): the pixel size per aspect ratio (not published: we render exactly the asked ratio at the
documented megapixels, see SIZES; the real service is seen to return 64-px buckets such as 1344x768 for
16:9, so a client must read the size from the image); the v2beta 401 body (not in the spec; we use the
v2beta shape); validation messages beyond `"<field>: is required"`; that a missing or `*/*` accept means
`image/*` (the spec's default); that fields a service does not define (`image` on Core) are ignored;
latencies. Stability documents no rate-limit headers (a 429 says "timed out for 60 seconds"), so no
Retry-After is sent.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import re
import threading
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from PIL import Image, ImageFilter
from starlette.concurrency import run_in_threadpool

from simulator.core import Fault, Simulator
from simulator.jobs import start_job
from simulator.media import MIME, image_size, still

VENDOR = "stability"
PREFIX = "/stability"
#: A key of the real shape (`sk-` and 48 letters or digits); any key of that shape is accepted.
SIMULATOR_KEY = "sk-SimulatorStability0123456789abcdefghijklmnopqrst"
KEY_PATTERN = re.compile(r"^sk-[A-Za-z0-9]{48}$")
MAX_REQUEST_BYTES = 10 * 1024 * 1024
MAX_PROMPT = 10_000
MAX_SEED = 4_294_967_294
STARTING_CREDITS = 10_000.0

ASPECT_RATIOS = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")
FORMATS = ("png", "jpeg", "webp")
STYLE_PRESETS = (
    "enhance", "anime", "photographic", "digital-art", "comic-book", "fantasy-art", "line-art",
    "analog-film", "neon-punk", "isometric", "low-poly", "origami", "modeling-compound", "cinematic",
    "3d-model", "pixel-art", "tile-texture",
)  # fmt: skip
MODES = ("text-to-image", "image-to-image")


@dataclass(frozen=True)
class Model:
    """One generation service: its output size, price, mean latency (u) and input-image rules."""

    megapixels: float
    credits: float
    latency_s: float
    #: Smallest side, largest side and fewest pixels an input image may have (0 when none is taken).
    image_min_side: int = 0
    image_max_side: int = 0
    image_min_pixels: int = 0


MODELS = {
    "ultra": Model(1.0, 8, 8.0, 64, 16_384, 4_096),
    "core": Model(1.5, 3, 3.0),
    "sd3.5-large": Model(1.0, 6.5, 6.0, 64),
    "sd3.5-large-turbo": Model(1.0, 4, 3.0, 64),
    "sd3.5-medium": Model(1.0, 3.5, 4.0, 64),
    # The spec's enum omits sd3.5-flash, but its description prices it and the endpoint text lists it.
    "sd3.5-flash": Model(1.0, 2.5, 2.0, 64),
}
#: "As of April 17, 2025, sd3-large, sd3-large-turbo and sd3-medium are re-routed to their sd3.5 equivalent."
SD3_ALIASES = {
    "sd3-large": "sd3.5-large",
    "sd3-large-turbo": "sd3.5-large-turbo",
    "sd3-medium": "sd3.5-medium",
}
SD3_MODELS = (*(m for m in MODELS if m.startswith("sd3.5")), *SD3_ALIASES)


def frame(ratio: tuple[int, int], megapixels: float) -> tuple[int, int]:
    """The exact a:b frame whose area is nearest `megapixels` (a multiple of the ratio's terms). (u)"""
    a, b = ratio
    k = max(1, round(math.sqrt(megapixels * 1024 * 1024 / (a * b))))
    return a * k, b * k


#: Text-to-image sizes by megapixels and aspect ratio, e.g. 1 MP 16:9 → 1360x765, 1.5 MP 1:1 → 1254x1254. (u)
SIZES = {
    (mp, ratio): frame(tuple(int(x) for x in ratio.split(":")), mp)  # type: ignore[arg-type]
    for mp in {m.megapixels for m in MODELS.values()}
    for ratio in ASPECT_RATIOS
}


def _id() -> str:
    return uuid.uuid4().hex


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """Stability's v2beta error body. `retry_after` is not sent: Stability documents no rate-limit headers."""
    names = {400: "bad_request", 401: "unauthorized", 402: "payment_required", 403: "content_moderation",
             404: "not_found", 413: "payload_too_large", 429: "rate_limit_exceeded", 500: "internal_error",
             503: "service_unavailable", 504: "gateway_timeout"}  # fmt: skip
    if status == 429:
        message = (
            "You have exceeded the rate limit of 150 requests within a 10 second period, and have been timed "
            "out for 60 seconds."
        )
    body = {"id": _id(), "name": names.get(status, "error"), "errors": [message]}
    return JSONResponse(body, status_code=status)


def _v1_unauthorized(message: str) -> Response:
    """The v1 API's error body (components/responses/401 of the official spec)."""
    return JSONResponse(
        {"id": str(uuid.uuid4()), "name": "unauthorized", "message": message}, status_code=401
    )


@dataclass
class Part:
    name: str
    filename: str | None
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def parse_form(content_type: str, body: bytes) -> list[Part] | None:
    """The parts of a multipart/form-data body, or None when it is not one."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        return None
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            parts.append(Part(name, part.get_filename(), part.get_payload(decode=True) or b""))
    return parts


def image_kind(data: bytes) -> str | None:
    """jpeg, png or webp by magic number: the formats Stability takes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _number(value: str, low: float, high: float, integer: bool = False) -> float | None:
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        return None
    return number if low <= number <= high and math.isfinite(number) else None


def validate(service: str, fields: dict[str, str], image: bytes | None) -> tuple[list[str], dict[str, Any]]:
    """The `<field>: <problem>` messages Stability would list, and the settings to render with."""
    errors: list[str] = []
    prompt = fields.get("prompt")
    if prompt is None:
        errors.append("prompt: is required")
    elif not 1 <= len(prompt) <= MAX_PROMPT:
        errors.append(f"prompt: must be between 1 and {MAX_PROMPT} characters")
    if len(fields.get("negative_prompt", "")) > MAX_PROMPT:
        errors.append(f"negative_prompt: must be at most {MAX_PROMPT} characters")
    enums = {"aspect_ratio": ASPECT_RATIOS, "output_format": FORMATS, "style_preset": STYLE_PRESETS}
    if service == "sd3":
        enums |= {"model": SD3_MODELS, "mode": MODES}
    for name, allowed in enums.items():
        if name in fields and fields[name] not in allowed:
            errors.append(f"{name}: must be one of {', '.join(allowed)}")
    if "seed" in fields and _number(fields["seed"], 0, MAX_SEED, integer=True) is None:
        errors.append(f"seed: must be an integer between 0 and {MAX_SEED}")
    if "strength" in fields and _number(fields["strength"], 0, 1) is None:
        errors.append("strength: must be a number between 0 and 1")
    if service == "sd3" and "cfg_scale" in fields and _number(fields["cfg_scale"], 1, 10) is None:
        errors.append("cfg_scale: must be a number between 1 and 10")

    model = (
        SD3_ALIASES.get(fields.get("model", ""), fields.get("model", "sd3.5-large"))
        if service == "sd3"
        else service
    )
    # Ultra works from an image whenever one comes; SD 3.5 only in mode=image-to-image; Core takes none.
    if service == "sd3":
        from_image = fields.get("mode", "text-to-image") == "image-to-image"
        if from_image and image is None:
            errors.append("image: is required for image-to-image requests")
        if not from_image and image is not None:
            errors.append("image: is only valid for image-to-image requests")
    else:
        from_image = service == "ultra" and image is not None
    if from_image and "strength" not in fields:
        errors.append("strength: is required when image is provided")
    settings: dict[str, Any] = {"model": model, "from_image": from_image}
    if (
        from_image
        and image is not None
        and (problem := _image_problem(MODELS.get(model, MODELS["ultra"]), image))
    ):
        errors.append(problem)
    return errors, settings


def _image_problem(spec: Model, data: bytes) -> str | None:
    size = image_size(data)
    if size is None or image_kind(data) is None:
        return "image: must be a jpeg, png or webp image"
    width, height = size
    if min(width, height) < spec.image_min_side or (
        spec.image_max_side and max(width, height) > spec.image_max_side
    ):
        most = f" and at most {spec.image_max_side}" if spec.image_max_side else ""
        return f"image: width and height must be at least {spec.image_min_side}{most} pixels"
    if width * height < spec.image_min_pixels:
        return f"image: must have at least {spec.image_min_pixels} pixels"
    return None


def blurred(data: bytes, fmt: str) -> bytes:
    """What CONTENT_FILTERED delivers: the output blurred past recognition."""
    with Image.open(io.BytesIO(data)) as image:
        # Down to 1/32 and back up: a heavy blur at a fraction of a large Gaussian's cost.
        small = image.convert("RGB").resize(
            (max(1, image.width // 32), max(1, image.height // 32)), Image.BOX
        )
        out = small.resize(image.size, Image.BICUBIC).filter(ImageFilter.GaussianBlur(2))
    buffer = io.BytesIO()
    out.save(buffer, format={"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt])
    return buffer.getvalue()


@dataclass
class Account:
    credits: float = STARTING_CREDITS
    lock: threading.Lock = field(default_factory=threading.Lock)


def _authorised(request: Request) -> str | None:
    """None when the bearer key is good, else why not."""
    header = request.headers.get("authorization")
    if not header:
        return "missing authorization header"
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not KEY_PATTERN.match(key.strip()):
        return "authorization: invalid API key"
    return None


def router(sim: Simulator) -> APIRouter:
    api = APIRouter()
    account = Account()

    sim.keeps_fresh(account, Account)  # a reset starts the account afresh

    async def generate(service: str, request: Request) -> Response:
        if (problem := _authorised(request)) is not None:
            return error_response(401, problem)
        accept = request.headers.get("accept", "image/*").split(";")[0].strip().lower()
        if accept not in ("image/*", "*/*", "application/json"):
            return error_response(400, "accept: must be one of image/*, application/json")
        body = await request.body()
        if len(body) > MAX_REQUEST_BYTES:
            return error_response(413, "body: payloads cannot be larger than 10MiB in size")
        parts = parse_form(request.headers.get("content-type", ""), body)
        if parts is None:
            return error_response(400, "content-type: must be multipart/form-data")
        fields = {p.name: p.text for p in parts if p.filename is None and p.name != "image"}
        image = next((p.data for p in parts if p.name == "image"), None)
        errors, settings = validate(service, fields, image)
        if errors:
            return JSONResponse({"id": _id(), "name": "bad_request", "errors": errors}, status_code=400)
        model = settings["model"]
        spec = MODELS[model]
        fmt = fields.get("output_format", "png")
        if settings["from_image"] and image is not None:
            # An image-to-image result keeps the input's shape (aspect_ratio is for text-to-image only). (u)
            iw, ih = image_size(image) or (1, 1)
            width = round(math.sqrt(spec.megapixels * 1024 * 1024 * iw / ih))
            height = max(1, round(width * ih / iw))
        else:
            width, height = SIZES[(spec.megapixels, fields.get("aspect_ratio", "1:1"))]
        seed = int(fields.get("seed", "0")) or sim.random.randint(1, MAX_SEED)
        with account.lock:
            if account.credits < spec.credits:
                return error_response(
                    402,
                    "You lack sufficient credits to make this request. Please purchase more credits at "
                    "https://platform.stability.ai/account/credits and try again.",
                )
        outcomes = (Fault.failed, Fault.moderation, Fault.moderation_output)
        job = start_job(sim, VENDOR, spec.latency_s, {"model": model, **fields}, faults=outcomes)
        if job.fault is Fault.moderation:
            await asyncio.sleep(0.1 * job.latency)  # refused before generating
            return error_response(
                403,
                "Your request was flagged by our content moderation system, as a result your request was "
                "denied and you were not charged.",
            )
        await asyncio.sleep(job.latency)
        if job.fault is Fault.failed:
            return error_response(500, "An unexpected server error has occurred, please try again later.")
        shape = (VENDOR, model, width, height, fmt)
        data = await run_in_threadpool(
            sim.media, shape, lambda: still(fields.get("prompt", ""), width, height, fmt)
        )
        finish = "SUCCESS"
        if job.fault is Fault.moderation_output:
            data, finish = await run_in_threadpool(blurred, data, fmt), "CONTENT_FILTERED"
        with account.lock:
            account.credits -= spec.credits
        request_id = _id()
        if accept == "application/json":
            return JSONResponse(
                {"image": base64.b64encode(data).decode("ascii"), "finish_reason": finish, "seed": seed},
                media_type=f"application/json; type={MIME[fmt]}",
                headers={"x-request-id": request_id},
            )
        headers = {"finish-reason": finish, "seed": str(seed), "x-request-id": request_id}
        return Response(data, media_type=MIME[fmt], headers=headers)

    for service in ("ultra", "core", "sd3"):

        async def handler(request: Request, service: str = service) -> Response:
            return await generate(service, request)

        api.add_api_route(f"/v2beta/stable-image/generate/{service}", handler, methods=["POST"],
                          name=f"stability_{service}")  # fmt: skip

    @api.get("/v1/user/balance")
    async def balance(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        if not header:
            return _v1_unauthorized("missing authorization header")
        if _authorised(request) is not None:
            return _v1_unauthorized("invalid API key")
        return JSONResponse({"credits": account.credits})

    @api.get("/_sim/credits")
    async def get_credits() -> dict[str, float]:
        return {"credits": account.credits}

    @api.post("/_sim/credits")
    async def set_credits(changes: dict[str, float]) -> dict[str, float]:
        with account.lock:
            account.credits = float(changes.get("credits", account.credits))
        return {"credits": account.credits}

    return api
