"""OpenAI Images through the official `openai` SDK: the GPT image models (providers/openai.toml).

A spec without inputs is `images.generate`; one with reference images (roles reference, style_reference,
character_reference: OpenAI has no roles, all go as images) or a `modify` of its `source` is `images.edit`, the
images uploaded as files: OpenAI takes no links here. The API is synchronous: the call is held for the whole generation and answered with the image inline as base64,
so there is nothing to poll and no link to expire (`sync = True`).

Sizes: the card's size nearest the spec's aspect. The gpt-image-2 and 2.5 models take any WxH, so they get the
exact aspect (1536x864 for 16:9); the others make only 1024x1024, 1536x1024 and 1024x1536, so a 16:9 or 9:16
image is centre-cropped from 3:2 here, as assembly would crop it anyway. OpenAI takes no seed.

Who retries what: the client has `max_retries=0`. The SDK would otherwise re-send a failed create (429 —
even `insufficient_quota` — 5xx, timeouts) with no idempotency key, and each repeat is a second paid image;
transient failures go up as ProviderError(rate_limited | generation_failed) for the task's retries to decide.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
from typing import Any

import httpx
import openai
from openai.types import ImagesResponse
from PIL import Image

from cutroom.assets import AssetSpec, InputRef
from cutroom.capabilities import Capability
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.inputs import local_media
from providers.protocol import Output
from providers.sizes import asked_size, dimensions, nearest_ratio
from providers.vendor import VendorAdapter

NAME = "openai"
#: The prompt cap of the GPT image models (SDK: "The maximum length is 32000 characters").
MAX_PROMPT = 32_000
#: Images one edit takes (SDK: "You can provide up to 16 images").
MAX_IMAGES = 16
#: What OpenAI takes as an input image (SDK: png, webp or jpg), and the file extension it gets.
UPLOAD_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
OUTPUT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
#: Qualities only the gpt-image-2.5 models (and their snapshots) take (SDK 3.63 docstrings).
TOP_QUALITIES = ("xhigh", "max")
TOP_QUALITY_MODELS = "gpt-image-2.5-"
#: Models whose edits take input_fidelity=low only (SDK: "gpt-image-1-mini supports only low").
LOW_FIDELITY_ONLY = ("gpt-image-1-mini",)
#: Error codes meaning the account cannot pay: never retried as they are.
BILLING_CODES = ("insufficient_quota", "billing_hard_limit_reached", "billing_not_active")
MODERATION_CODES = ("moderation_blocked", "content_policy_violation")
#: Anything shaped like an OpenAI key, masked in messages even where OpenAI already masked it.
KEY_SHAPE = re.compile(r"\bsk-[A-Za-z0-9_*.-]{4,}")
#: A reset time as OpenAI writes it in x-ratelimit-reset-*: 20ms, 1.5s, 6m0s, 1h2m3s.
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
#: An output further than this from the asked aspect is cropped to it.
ASPECT_SLACK = 0.01


class OpenAIErrors:
    """How OpenAI's answers go wrong, read the same for images and chat (and any OpenAI-compatible endpoint)."""

    transport_errors = (openai.APIConnectionError,)
    unreadable_errors: tuple[type[BaseException], ...] = (openai.APIResponseValidationError,)

    def map_error(self, exc: Exception, what: str) -> ProviderError | None:
        # openai 3.63 is built on httpx2: its error responses are not httpx.Response, which the base looks for.
        if isinstance(exc, openai.APIStatusError):
            return self.from_response(exc.response, what)  # type: ignore[arg-type]
        return super().map_error(exc, what)

    def from_response(self, response: httpx.Response, what: str) -> ProviderError:
        error = super().from_response(response, what)
        if error.kind is ErrorKind.rate_limited and (reset := limit_reset(response.headers)) is not None:
            # Retry-After is whole seconds; the exhausted limit's reset is to the millisecond.
            error.retry_after = reset
        return error

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        detail = KEY_SHAPE.sub("sk-…", super().error_detail(body, response))
        if _error(body).get("code") == "model_not_found" and "deprecated" in detail:
            detail += f" (use {self.vendor.default_model(self.capability)} instead)"
        return detail

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        error = _error(body)
        code = error.get("code")
        # A 429 is a rate limit or an empty account: only the code tells them apart.
        if code in BILLING_CODES or error.get("type") == "insufficient_quota":
            return ErrorKind.insufficient_credits
        if code in MODERATION_CODES:
            stage = (error.get("moderation_details") or {}).get("moderation_stage")
            return ErrorKind.moderation_output if stage == "output" else ErrorKind.moderation_input
        if status == 404 and code == "model_not_found":
            return ErrorKind.invalid_input  # a shut-down or unknown model: no retry brings it back
        return None


class OpenAIImage(OpenAIErrors, VendorAdapter):
    vendor_name = NAME
    capability = Capability.image
    sync = True
    unreadable_errors = (openai.APIResponseValidationError, binascii.Error)

    def make_client(self) -> openai.OpenAI:
        return openai.OpenAI(api_key=self.api_key, **self.sdk_settings())

    # -- checks before paying --------------------------------------------------------------------------------

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        problems = _option_problems(card.model, card.settings(spec), editing=bool(spec.inputs))
        if len(spec.inputs) > MAX_IMAGES:
            problems.append(f"{len(spec.inputs)} input images (OpenAI takes up to {MAX_IMAGES})")
        problems += [
            f"a {ref.role} input that is not a local file ({ref.uri[:60]}): OpenAI takes input images as "
            "uploads, so give it as a file"
            for ref in spec.inputs
            if not ref.uri.startswith("file:")
        ]
        if problems:
            raise ProviderError(
                ErrorKind.invalid_input, f"{card.model} cannot take {'; '.join(problems)}", provider=NAME
            )

    # -- the paid call ---------------------------------------------------------------------------------------

    def generate(self, spec: AssetSpec, card: ModelCard) -> Output:
        settings = card.settings(spec)
        request: dict[str, Any] = {
            "model": card.model,
            "prompt": spec.prompt[:MAX_PROMPT],
            "n": 1,
            **settings,
        }
        if size := size_for(spec, card.sizes):
            request["size"] = f"{size[0]}x{size[1]}"
        if spec.inputs:
            images = [upload(ref, number) for number, ref in enumerate(spec.inputs, 1)]
            # One image goes as the field `image`, several as repeated `image[]`.
            answer = self.client.images.edit(image=images[0] if len(images) == 1 else images, **request)
        else:
            answer = self.client.images.generate(**request)
        return self.output(answer, spec, settings)

    def output(self, answer: ImagesResponse, spec: AssetSpec, settings: dict[str, Any]) -> Output:
        """The answer's image, cropped to the asked aspect where the model's size is not it."""
        encoded = answer.data[0].b64_json if answer.data else None
        if not encoded:
            raise ProviderError(
                ErrorKind.generation_failed, "OpenAI answered without an image", provider=NAME
            )
        fmt = settings.get("output_format", "png")  # OpenAI's default; the answer echoes it
        data = base64.b64decode(encoded, validate=True)
        made = self.described(data, OUTPUT_TYPES[fmt])
        ratio = asked_ratio(spec)
        if ratio is None or _off(made.width / made.height, ratio) <= ASPECT_SLACK:  # type: ignore[operator]
            return made
        return self.described(
            cropped(data, fmt, ratio, settings.get("output_compression")), OUTPUT_TYPES[fmt]
        )


def _option_problems(model: str, settings: dict[str, Any], *, editing: bool) -> list[str]:
    """The option combinations OpenAI refuses, named before anything is paid for."""
    problems = []
    if settings.get("quality") in TOP_QUALITIES and not model.startswith(TOP_QUALITY_MODELS):
        problems.append(f"quality {settings['quality']} (only the gpt-image-2.5 models take xhigh and max)")
    fmt = settings.get("output_format", "png")
    if settings.get("background") == "transparent" and fmt == "jpeg":
        problems.append("a transparent background in jpeg (use output_format png or webp)")
    if "output_compression" in settings and fmt == "png":
        problems.append("output_compression for a png (set output_format jpeg or webp)")
    if editing and "moderation" in settings:
        problems.append("the moderation option with input images (OpenAI's edits endpoint takes none)")
    if "input_fidelity" in settings:
        if not editing:
            problems.append("input_fidelity without input images (it applies to references and edits)")
        elif model in LOW_FIDELITY_ONLY and settings["input_fidelity"] != "low":
            problems.append(f"input_fidelity {settings['input_fidelity']} ({model} takes low only)")
    return problems


def upload(ref: InputRef, number: int) -> tuple[str, bytes, str]:
    """An input image as a (filename, bytes, MIME) file: raw bytes would go out as application/octet-stream,
    which OpenAI refuses. The bytes are sniffed (never the name trusted) and the name says nothing of the path."""
    data, mime = local_media(ref, NAME, ("image",))
    if mime not in UPLOAD_TYPES:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"the {ref.role} input is {mime}; OpenAI takes png, jpeg or webp images",
            provider=NAME,
        )
    return f"{ref.role}-{number}.{UPLOAD_TYPES[mime]}", data, mime


def asked_ratio(spec: AssetSpec) -> float | None:
    shape = asked_size(spec, aspect_first=True)
    return None if shape is None else shape[0] / shape[1]


def size_for(spec: AssetSpec, sizes: tuple[str, ...]) -> tuple[int, int] | None:
    """The card's size nearest the spec's aspect; None (OpenAI's `auto`) when the spec names no shape."""
    ratio = asked_ratio(spec)
    if ratio is None or not sizes:
        return None
    return dimensions(nearest_ratio(ratio, sizes))


def cropped(data: bytes, fmt: str, ratio: float, compression: int | None) -> bytes:
    """The image centre-cropped to the ratio, saved in its own format."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        keep = (round(height * ratio), height) if width / height > ratio else (width, round(width / ratio))
        left, top = (width - keep[0]) // 2, (height - keep[1]) // 2
        part = image.crop((left, top, left + keep[0], top + keep[1]))
        buffer = io.BytesIO()
        extra = {} if fmt == "png" else {"quality": 95 if compression is None else compression}
        part.save(buffer, format=PIL_FORMATS[fmt], **extra)
    return buffer.getvalue()


def limit_reset(headers: httpx.Headers) -> float | None:
    """Seconds until the exhausted request or token limit resets (x-ratelimit-reset-*), if a 429 says."""
    for limit in ("requests", "tokens"):
        if headers.get(f"x-ratelimit-remaining-{limit}") == "0":
            parts = DURATION_PART.findall(headers.get(f"x-ratelimit-reset-{limit}", ""))
            if parts:
                return sum(float(number) * SECONDS[unit] for number, unit in parts)
    return None


def _off(ratio: float, asked: float) -> float:
    return abs(math.log(ratio / asked))


def _error(body: Any) -> dict[str, Any]:
    """The inner object of OpenAI's {"error": {message, type, param, code, …}}."""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}
