"""Google's Gemini API (generativelanguage.googleapis.com) images and Veo video, as `google-genai` 3.6.1 calls it.

Two synchronous image endpoints, answered in the request after the model's latency:

- `POST /{v1|v1beta}/models/{gemini image model}:generateContent`: contents of text and inline reference
  images, generationConfig.responseModalities and .imageConfig {aspectRatio, imageSize}; the answer is
  candidates[0].content.parts with the image as inlineData (base64), usageMetadata, modelVersion, responseId.
  The SDK sends `v1` by default (3.6.1: GOOGLE_AI_API_DEFAULT_VERSION = 'v1'); docs and curl use `v1beta`.
- `POST /v1beta/models/{imagen model}:predict`: instances[{prompt}] and parameters → predictions[] of
  {bytesBase64Encoded, mimeType}. The SDK's generate_images no longer runs on the Gemini API (3.6.1 raises
  ValueError outside Vertex), so this is the REST contract (google_imagen.md) and the Gemini-API mapping of
  older SDKs (which fields they sent, which they refused as "not supported in Gemini API").

Veo is a long-running operation:

- `POST /v1beta/models/{veo model}:predictLongRunning`: instances[{prompt, image, lastFrame, referenceImages}]
  (images as {bytesBase64Encoded, mimeType}, the wire shape of the SDK's Image) and parameters {aspectRatio,
  durationSeconds, resolution, negativePrompt, personGeneration, sampleCount}; the answer is the operation,
  `{"name": "models/{model}/operations/{id}"}`. (3.6.1's generate_videos raises ValueError outside Vertex, so the
  request is the Gemini-API mapping of earlier SDKs (`_GenerateVideosParameters_to_mldev`) and Google's REST docs.)
- `GET /v1beta/models/{model}/operations/{id}` (what the SDK's operations.get sends on the Gemini API): `{name}`
  while it runs, then `{name, done: true, response: {generateVideoResponse: {generatedSamples: [{video: {uri}}]}}}`,
  `{name, done: true, error: {code, message}}` (Fault.failed), or a response without samples that says
  raiMediaFilteredCount and raiMediaFilteredReasons (moderation: a refused prompt or input image, or a withheld
  clip, told apart only by the reason's words).
- The video's uri is `https://generativelanguage.googleapis.com/v1beta/files/{id}:download?alt=media`, as Google
  answers it: the SDK's files.download keeps only the file id and asks its own base URL, so the simulator is
  asked too. `GET /v1beta/files/{id}:download` needs the key and redirects (302) to a signed, expiring link
  (simulator/outputs.py), as Google's docs' `curl -L` suggests; Fault.expired makes that link answer 403.

Auth is `x-goog-api-key` (or `?key=`): none is 403 PERMISSION_DENIED, a malformed one 400 INVALID_ARGUMENT with
reason API_KEY_INVALID (both seen in the wild). Errors are Google RPC bodies {"error": {code, message, status,
details?}}. Request JSON is read the way protobuf reads it: camelCase or snake_case names (the SDK itself sends
`inlineData.mime_type`), unknown names refused, bytes as standard or web-safe base64.

Faults, decided per request: failed → 500 INTERNAL; moderation → generateContent answers 200 with
promptFeedback.blockReason and no candidates, :predict a 400 (u); moderation_output → a candidate with
finishReason IMAGE_SAFETY / IMAGE_PROHIBITED_CONTENT and no image, :predict drops the images (raiFilteredReason
with includeRaiReason, else `{}`). There is no output link, so Fault.expired changes nothing. Billing and daily
quota are set through `POST /google/_sim/account`.

Unverified (u), Veo: the durations, resolutions and input fields each model takes, the rules tying 1080p and
reference images to 8 s clips, the messages of every refusal, the moderation reasons' words, the 302 of the file
download, the operation and file id shapes, latencies.

Unverified (u): pixel sizes of the Gemini 3 models and of Imagen (from memory of Google's tables; the Gemini 2.5
Flash Image table is from a copy of the official one), validation messages other than the auth, 404, bad
base64, unsupported-MIME, billing and quota ones, the :predict moderation answer, latencies, token counts of
gemini-3.1-flash-image-preview.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from simulator import media
from simulator.core import Fault, Simulator
from simulator.jobs import JOB_FAULTS as VIDEO_FAULTS
from simulator.jobs import Phase, SimJob, start_job
from simulator.outputs import Hosted

VENDOR = "google"
PREFIX = "/google"
#: Google API keys are "AIza" and 35 URL-safe characters.
KEY_PATTERN = re.compile(r"^AIza[0-9A-Za-z_-]{35}$")
SIMULATOR_KEY = "AIzaSyCutroomSimulatorKey00000000000000"
VERSIONS = ("v1", "v1beta")
TROUBLESHOOTING = "https://developers.generativeai.google/guide/troubleshooting"
RATE_LIMITS_DOC = "https://ai.google.dev/gemini-api/docs/rate-limits"
#: The Gemini API's inline request limit ("Request payload size exceeds the limit: 20971520 bytes.").
MAX_REQUEST_BYTES = 20 * 1024 * 1024
INPUT_MIME = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
          500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}  # fmt: skip
JOB_FAULTS = (Fault.failed, Fault.moderation, Fault.moderation_output)
INTERNAL = f"An internal error has occurred. Please retry or report in {TROUBLESHOOTING}"
#: Reference images per prompt (Gemini 3 image models' documented limit, applied to all).
MAX_INPUT_IMAGES = 14

#: Gemini 2.5 Flash Image, 1K only: ai.google.dev's table (as copied by API resellers).
FLASH_25_SIZES = {
    "1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832), "3:4": (864, 1184), "4:3": (1184, 864),
    "4:5": (896, 1152), "5:4": (1152, 896), "9:16": (768, 1344), "16:9": (1344, 768), "21:9": (1536, 672),
}  # fmt: skip
#: (u) Gemini 3 image models at 1K; 2K and 4K double and quadruple these, "512" halves them.
GEMINI_3_SIZES = {
    "1:1": (1024, 1024), "2:3": (848, 1264), "3:2": (1264, 848), "3:4": (896, 1200), "4:3": (1200, 896),
    "4:5": (928, 1152), "5:4": (1152, 928), "9:16": (768, 1376), "16:9": (1376, 768), "21:9": (1584, 672),
}  # fmt: skip
#: (u) The extreme ratios only Gemini 3.1 Flash Image takes, at 1K.
EXTREME_SIZES = {"1:4": (512, 2048), "4:1": (2048, 512), "1:8": (384, 3072), "8:1": (3072, 384)}
SCALE = {"512": 0.5, "1K": 1, "2K": 2, "4K": 4}
#: Imagen 4 at 1K (u: Vertex's tables); sampleImageSize 2K doubles them.
IMAGEN_SIZES = {"1:1": (1024, 1024), "3:4": (896, 1280), "4:3": (1280, 896), "9:16": (768, 1408),
                "16:9": (1408, 768)}  # fmt: skip


@dataclass(frozen=True)
class GeminiModel:
    """A Gemini image model: its 1K frames, image sizes with the output tokens each costs, and its output."""

    frames: dict[str, tuple[int, int]]
    tokens: dict[str, int]  # imageSize -> output tokens per image
    usd_per_m_output: float
    latency_s: float
    mime: str = "image/png"
    thinking: bool = False
    input_image_tokens: int = 258


GEMINI_MODELS = {
    "gemini-2.5-flash-image": GeminiModel(FLASH_25_SIZES, {"1K": 1290}, 30.0, 8.0),
    # gemini-3-pro-image-preview answers image/png or image/jpeg, varying (python-genai#1824, ComfyUI#12511):
    # jpeg here, so an adapter that assumes png is caught.
    "gemini-3-pro-image-preview": GeminiModel(
        GEMINI_3_SIZES, {"1K": 1120, "2K": 1120, "4K": 2000}, 120.0, 25.0, "image/jpeg", True, 560
    ),
    "gemini-3.1-flash-image-preview": GeminiModel(
        {**GEMINI_3_SIZES, **EXTREME_SIZES},
        {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
        60.0,
        12.0,
        "image/png",
        True,
        560,
    ),
}


@dataclass(frozen=True)
class ImagenModel:
    usd_per_image: float
    latency_s: float
    image_sizes: tuple[str, ...] = ("1K", "2K")


IMAGEN_MODELS = {
    "imagen-4.0-generate-001": ImagenModel(0.04, 8.0),
    "imagen-4.0-ultra-generate-001": ImagenModel(0.06, 15.0),
    "imagen-4.0-fast-generate-001": ImagenModel(0.02, 4.0, ()),
}


@dataclass(frozen=True)
class VeoModel:
    """(u) A Veo model on the Gemini API: the lengths and resolutions it makes, the images it takes."""

    durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    latency_s: float
    last_frame: bool = False
    references: bool = False


VEO_MODELS = {
    "veo-3.1-generate-preview": VeoModel(
        (4, 6, 8), ("720p", "1080p"), 90.0, last_frame=True, references=True
    ),
    "veo-3.1-fast-generate-preview": VeoModel((4, 6, 8), ("720p", "1080p"), 45.0, last_frame=True),
    "veo-3.0-generate-001": VeoModel((8,), ("720p", "1080p"), 90.0),
    "veo-3.0-fast-generate-001": VeoModel((8,), ("720p", "1080p"), 45.0),
    "veo-2.0-generate-001": VeoModel((5, 6, 7, 8), ("720p",), 60.0),
}
#: Pixels per resolution and aspect ratio.
VEO_FRAMES = {
    ("720p", "16:9"): (1280, 720), ("720p", "9:16"): (720, 1280),
    ("1080p", "16:9"): (1920, 1080), ("1080p", "9:16"): (1080, 1920),
}  # fmt: skip
VEO_FPS = 24
#: What a Veo instance and its parameters may hold on the Gemini API.
VEO_INSTANCE_FIELDS = {"prompt", "image", "lastFrame", "referenceImages", "video"}
VEO_PARAMETERS = {
    "aspectRatio",
    "durationSeconds",
    "resolution",
    "negativePrompt",
    "personGeneration",
    "sampleCount",
}
VEO_IMAGE_FIELDS = {"bytesBase64Encoded", "mimeType", "gcsUri"}
VEO_INPUT_MIME = ("image/png", "image/jpeg", "image/webp")
MAX_VEO_REFERENCES = 3
#: Where Google's answers say a video lives; the SDK keeps only the file id and asks its own base URL.
FILES_URI = "https://generativelanguage.googleapis.com/v1beta/files/{id}:download?alt=media"
#: (u) Why Veo made no video, by the fault: a refused prompt or image, or a clip withheld after it was made.
VEO_INPUT_REFUSED = (
    "Veo could not generate videos because the input prompt violates Google's Responsible AI practices. Try "
    "rephrasing the prompt. If you think this was an error, send feedback. Support codes: 29310472"
)
VEO_OUTPUT_FILTERED = (
    "Veo filtered out the generated video because it may violate Google's usage guidelines. You will not be "
    "charged for it. Support codes: 64151117"
)

#: Fields the Gemini API's protos know (camelCase), per object, as google-genai 3.6.1 sends them.
REQUEST_FIELDS = {"contents", "generationConfig", "systemInstruction", "safetySettings", "tools", "toolConfig",
                  "labels", "cachedContent", "serviceTier", "store", "continuationToken", "model"}  # fmt: skip
GENERATION_FIELDS = {
    "temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "responseLogprobs",
    "logprobs", "presencePenalty", "frequencyPenalty", "seed", "responseMimeType", "responseSchema",
    "responseJsonSchema", "responseModalities", "mediaResolution", "speechConfig", "thinkingConfig",
    "imageConfig", "enableEnhancedCivicAnswers", "audioTranscriptionConfig",
}  # fmt: skip
#: The SDK refuses personGeneration, outputMimeType … in imageConfig as "not supported in Gemini API".
IMAGE_CONFIG_FIELDS = {"aspectRatio", "imageSize"}
PART_FIELDS = {"text", "inlineData", "fileData", "thought", "thoughtSignature", "mediaResolution",
               "videoMetadata", "partMetadata"}  # fmt: skip
#: Imagen parameters older SDKs sent on the Gemini API, and those they refused there.
IMAGEN_PARAMETERS = {"sampleCount", "aspectRatio", "guidanceScale", "safetySetting", "personGeneration",
                     "includeSafetyAttributes", "includeRaiReason", "language", "outputOptions",
                     "sampleImageSize"}  # fmt: skip
IMAGEN_REFUSED = ("negativePrompt", "seed", "addWatermark", "enhancePrompt", "storageUri")
PERSON_GENERATION = ("dont_allow", "allow_adult", "allow_all")
SAFETY_SETTINGS = ("block_low_and_above", "block_medium_and_above", "block_only_high")
RAI_REASON = (
    "Your current safety filter threshold filtered out {n} generated images. You will not be charged for "
    "blocked images. Try rephrasing the prompt. If you think this was an error, send feedback. "
    "Support codes: 58061214"
)
PROMPT_REFUSED = (
    "Image generation failed with the following error: The prompt could not be submitted. This prompt "
    "contains sensitive words that violate Google's Responsible AI practices. Try rephrasing the prompt. If "
    "you think this was an error, send feedback. Support codes: 42876398"
)


class GoogleError(Exception):
    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


def error_response(
    status: int, message: str, retry_after: float | None = None, details: list[dict[str, Any]] | None = None
) -> Response:
    """Google's RPC error body. A retry delay goes in a RetryInfo detail: Google sends no Retry-After header."""
    error: dict[str, Any] = {"code": status, "message": message, "status": STATUS.get(status, "UNKNOWN")}
    details = list(details or [])
    if status == 429 and not details:
        details.append(_quota_failure("GenerateRequestsPerMinutePerProjectPerModel", "generate_requests"))
    if retry_after is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"}
        )
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status)


def _quota_failure(quota_id: str, metric: str, model: str | None = None) -> dict[str, Any]:
    dimensions = {"location": "global", **({"model": model} if model else {})}
    violation = {
        "quotaMetric": f"generativelanguage.googleapis.com/{metric}",
        "quotaId": quota_id,
        "quotaDimensions": dimensions,
    }
    return {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]}


def _field_error(field_path: str, message: str) -> GoogleError:
    violation = {"field": field_path, "description": message}
    return GoogleError(
        400, message, [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}]
    )


def _camel(value: Any) -> Any:
    """Keys as protobuf's JSON parser sees them: snake_case names become lowerCamelCase."""
    if isinstance(value, dict):
        return {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _known(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    """The object, or the parser's refusal of its first unknown field (`where` in snake_case, as Google says)."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise _field_error(where, f"Invalid JSON payload received. Expected an object at '{where}'.")
    for name in obj:
        if name not in allowed:
            at = f" at '{where}'" if where else ""
            raise _field_error(
                where, f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
            )
    return obj


def _bytes(text: Any) -> bytes | None:
    """Protobuf bytes: standard or web-safe base64, padding optional."""
    if not isinstance(text, str):
        return None
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class Account:
    """What the project behind SIMULATOR_KEY may do: billing on (paid tier) and today's quota left."""

    billing_enabled: bool = True
    daily_quota_exhausted: bool = False


@dataclass
class Prompt:
    text: str = ""
    images: list[tuple[int, int]] = field(default_factory=list)  # sizes of the inline reference images


def _authorise(request: Request) -> None:
    key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
    if not key:
        raise GoogleError(
            403,
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to call "
            "this API.",
        )
    if not KEY_PATTERN.match(key.strip()):
        message = "API key not valid. Please pass a valid API key."
        raise GoogleError(
            400,
            message,
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                },
            ],
        )


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_REQUEST_BYTES:
        raise GoogleError(400, f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise GoogleError(400, "Invalid JSON payload received. Unexpected token.") from None
    if not isinstance(body, dict):
        raise GoogleError(400, "Invalid JSON payload received. Expected an object.")
    return _camel(body)


def _not_found(model: str, version: str, method: str) -> GoogleError:
    return GoogleError(
        404,
        f"models/{model} is not found for API version {version}, or is not supported for "
        f"{method}. Call ListModels to see the list of available models and their supported "
        "methods.",
    )


def _read_contents(contents: Any) -> Prompt:
    """The prompt text and reference images of `contents`, refused as the API refuses bad ones."""
    if not isinstance(contents, list) or not contents:
        raise GoogleError(400, "* GenerateContentRequest.contents: contents is not specified\n")
    prompt = Prompt()
    texts = []
    for i, content in enumerate(contents):
        content = _known(content, {"role", "parts"}, f"contents[{i}]")
        if content.get("role", "user") not in ("user", "model"):
            raise GoogleError(400, "Please use a valid role: user, model.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise GoogleError(
                400, f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            )
        for j, part in enumerate(parts):
            where = f"contents[{i}].parts[{j}]"
            part = _known(part, PART_FIELDS, where)
            if "text" in part:
                if content.get("role", "user") == "user" and not part.get("thought"):
                    texts.append(str(part["text"]))
            elif "inlineData" in part:
                prompt.images.append(_reference_image(part["inlineData"], f"{where}.inline_data"))
            elif "fileData" in part:
                uri = (part["fileData"] or {}).get("fileUri") if isinstance(part["fileData"], dict) else None
                if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
                    raise GoogleError(
                        400, f"* GenerateContentRequest.{where}.file_data.file_uri: invalid file uri"
                    )
            elif "thoughtSignature" not in part:
                raise GoogleError(
                    400,
                    f"* GenerateContentRequest.{where}.data: required oneof field 'data' must "
                    "have one initialized field\n",
                )
    prompt.text = "\n".join(texts).strip()
    return prompt


def _reference_image(blob: Any, where: str) -> tuple[int, int]:
    blob = _known(blob, {"mimeType", "data"}, where)
    mime = blob.get("mimeType")
    if not mime:
        raise GoogleError(400, f"* GenerateContentRequest.{where}.mime_type: mime_type is not specified\n")
    data = _bytes(blob.get("data"))
    if data is None:
        shown = str(blob.get("data"))[:40]
        raise _field_error(
            f"{where}.data",
            f"Invalid value at '{where}.data' (TYPE_BYTES), Base64 decoding failed for \"{shown}\"",
        )
    if mime not in INPUT_MIME:
        raise GoogleError(400, f"Unsupported MIME type: {mime}")
    size = media.image_size(data)
    if size is None:
        raise GoogleError(400, f"Unable to process input image. Please retry or report in {TROUBLESHOOTING}")
    return size


def _nearest_aspect(frames: dict[str, tuple[int, int]], size: tuple[int, int]) -> str:
    """Without aspectRatio the model keeps a reference image's shape (ai.google.dev): its nearest frame."""
    ratio = size[0] / size[1]
    return min(frames, key=lambda a: abs(frames[a][0] / frames[a][1] - ratio))


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _render(sim: Simulator, prompt: str, width: int, height: int, mime: str) -> bytes:
    fmt = mime.split("/")[1]
    return sim.media((VENDOR, width, height, fmt), lambda: media.still(prompt, width, height, fmt))


@dataclass
class ImageRequest:
    """A generateContent request for an image model, checked as the API checks it."""

    model: str
    spec: GeminiModel
    prompt: Prompt
    modalities: set[str]
    aspect: str
    image_size: str
    include_thoughts: bool

    @property
    def frame(self) -> tuple[int, int]:
        width, height = self.spec.frames[self.aspect]
        return round(width * SCALE[self.image_size]), round(height * SCALE[self.image_size])

    @property
    def log(self) -> dict[str, Any]:
        return {"model": self.model, "aspectRatio": self.aspect, "imageSize": self.image_size}

    def usage(self, text: str = "", image: bool = False) -> dict[str, Any]:
        """usageMetadata: the prompt's text and image tokens, then what came out (and the model's thinking)."""
        images = self.spec.input_image_tokens * len(self.prompt.images)
        prompt_details = [{"modality": "TEXT", "tokenCount": _tokens(self.prompt.text)}]
        if images:
            prompt_details.append({"modality": "IMAGE", "tokenCount": images})
        prompt = _tokens(self.prompt.text) + images
        made = [
            ("TEXT", _tokens(text) if text else 0),
            ("IMAGE", self.spec.tokens[self.image_size] if image else 0),
        ]
        output = sum(n for _, n in made)
        thoughts = 180 if self.spec.thinking and output else 0
        usage: dict[str, Any] = {"promptTokenCount": prompt, "totalTokenCount": prompt + output + thoughts,
                                 "promptTokensDetails": prompt_details}  # fmt: skip
        if output:
            usage["candidatesTokenCount"] = output
            usage["candidatesTokensDetails"] = [{"modality": m, "tokenCount": n} for m, n in made if n]
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage


def _image_request(model: str, body: dict[str, Any]) -> ImageRequest:
    spec = GEMINI_MODELS[model]
    body = _known(body, REQUEST_FIELDS, "")
    config = _known(body.get("generationConfig"), GENERATION_FIELDS, "generation_config")
    image_config = _known(config.get("imageConfig"), IMAGE_CONFIG_FIELDS, "generation_config.image_config")
    prompt = _read_contents(body.get("contents"))
    if len(prompt.images) > MAX_INPUT_IMAGES:
        raise GoogleError(400, f"Too many input images: at most {MAX_INPUT_IMAGES} images are supported.")
    # The API takes modality names in any case (the docs' Python says ['Text', 'Image']).
    modalities = config.get("responseModalities") or ["TEXT", "IMAGE"]
    wanted = {str(m).upper() for m in modalities} if isinstance(modalities, list) else {"?"}
    if not wanted <= {"TEXT", "IMAGE"}:
        others = ", ".join(sorted(m.lower() for m in wanted - {"TEXT", "IMAGE"}))
        raise GoogleError(400, f"Model does not support the requested response modalities: {others}")
    if config.get("candidateCount", 1) != 1:
        raise GoogleError(400, f"Multiple candidates is not enabled for models/{model}")
    aspect = image_config.get("aspectRatio")
    if aspect is None:
        aspect = _nearest_aspect(spec.frames, prompt.images[-1]) if prompt.images else "1:1"
    elif aspect not in spec.frames:
        raise _field_error(
            "generation_config.image_config.aspect_ratio",
            f"Unsupported aspect ratio: {aspect}. Supported: {', '.join(spec.frames)}.",
        )
    image_size = image_config.get("imageSize", "1K")
    if image_size not in spec.tokens:  # "1k" too: only an upper-case K is taken
        raise _field_error(
            "generation_config.image_config.image_size",
            f"Unsupported image size: {image_size}. Supported: {', '.join(spec.tokens)}.",
        )
    include_thoughts = spec.thinking and bool((config.get("thinkingConfig") or {}).get("includeThoughts"))
    return ImageRequest(model, spec, prompt, wanted, aspect, image_size, include_thoughts)


@dataclass
class VideoAsk:
    """A :predictLongRunning request, checked as the API checks it."""

    model: str
    prompt: str
    aspect: str
    resolution: str
    duration: int

    @property
    def frame(self) -> tuple[int, int]:
        return VEO_FRAMES[(self.resolution, self.aspect)]

    @property
    def log(self) -> dict[str, Any]:
        return {"model": self.model, "aspectRatio": self.aspect, "resolution": self.resolution,
                "durationSeconds": self.duration}  # fmt: skip


def _veo_image(image: Any, where: str) -> tuple[int, int]:
    """An input image as the SDK's Image goes on the wire: base64 bytes and their type; no Cloud Storage here."""
    image = _known(image, VEO_IMAGE_FIELDS, where)
    if "gcsUri" in image:
        raise GoogleError(400, f"{where}.gcsUri is not supported in Gemini API. Send the image bytes.")
    data = _bytes(image.get("bytesBase64Encoded"))
    if data is None:
        raise _field_error(f"{where}.bytes_base64_encoded", f"Invalid value at '{where}.bytes_base64_encoded' "
                           "(TYPE_BYTES), Base64 decoding failed")  # fmt: skip
    mime = image.get("mimeType")
    if mime not in VEO_INPUT_MIME:
        raise GoogleError(
            400, f"Unsupported MIME type for {where}: {mime}. Use image/png, image/jpeg or image/webp."
        )
    size = media.image_size(data)
    if size is None:
        raise GoogleError(
            400, f"Unable to process input image ({where}). Please retry or report in {TROUBLESHOOTING}"
        )
    return size


def _int(value: Any) -> int | None:
    """A protobuf int32 from JSON: a number or a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _video_request(model: str, body: dict[str, Any]) -> VideoAsk:
    spec = VEO_MODELS[model]
    body = _known(body, {"instances", "parameters"}, "")
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1:
        raise GoogleError(400, "Exactly one instance is required: instances must hold one video request.")
    instance = _known(instances[0], VEO_INSTANCE_FIELDS, "instances[0]")
    parameters = _known(body.get("parameters"), VEO_PARAMETERS, "parameters")
    if "video" in instance:
        raise GoogleError(400, "instances[0].video: video extension is not simulated.")
    prompt = instance.get("prompt", "")
    if not isinstance(prompt, str) or (not prompt.strip() and "image" not in instance):
        raise GoogleError(400, "instances[0].prompt is required unless an image is given.")
    if "image" in instance:
        _veo_image(instance["image"], "instances[0].image")
    if "lastFrame" in instance:
        if not spec.last_frame:
            raise GoogleError(400, f"lastFrame isn't supported by {model}.")
        if "image" not in instance:
            raise GoogleError(400, "instances[0].lastFrame needs instances[0].image: a last frame ends a clip that "
                              "starts from an image.")  # fmt: skip
        _veo_image(instance["lastFrame"], "instances[0].lastFrame")
    references = instance.get("referenceImages")
    if references is not None:
        if not spec.references:
            raise GoogleError(400, f"referenceImages isn't supported by {model}.")
        if not isinstance(references, list) or not 1 <= len(references) <= MAX_VEO_REFERENCES:
            raise GoogleError(400, f"referenceImages takes 1 to {MAX_VEO_REFERENCES} images.")
        if "image" in instance or "lastFrame" in instance:
            raise GoogleError(400, "referenceImages cannot be combined with image or lastFrame.")
        for i, reference in enumerate(references):
            reference = _known(reference, {"image", "referenceType"}, f"instances[0].referenceImages[{i}]")
            if reference.get("referenceType") != "asset":
                raise GoogleError(400, "referenceType must be 'asset' on the Gemini API.")
            _veo_image(reference.get("image"), f"instances[0].referenceImages[{i}].image")
    aspect = parameters.get("aspectRatio", "16:9")
    if aspect not in ("16:9", "9:16"):
        raise GoogleError(400, f"Unsupported aspect ratio: {aspect}. Supported: 16:9, 9:16.")
    duration = _int(parameters.get("durationSeconds", 8))
    if duration not in spec.durations:
        allowed = ", ".join(map(str, spec.durations))
        raise GoogleError(400, f"The value of durationSeconds for {model} must be one of: {allowed}; got "
                          f"{parameters.get('durationSeconds')!r}.")  # fmt: skip
    if "resolution" in parameters and len(spec.resolutions) == 1:
        raise GoogleError(400, f"resolution isn't supported by {model}.")
    resolution = parameters.get("resolution", "720p")
    if resolution not in spec.resolutions:
        raise GoogleError(
            400, f"Unsupported resolution: {resolution}. Supported: {', '.join(spec.resolutions)}."
        )
    if duration != 8 and (resolution != "720p" or references is not None):
        raise GoogleError(400, "durationSeconds must be 8 for 1080p or with reference images.")
    if _int(parameters.get("sampleCount", 1)) != 1:
        raise GoogleError(400, "sampleCount must be 1 on the Gemini API.")
    if parameters.get("personGeneration", "allow_adult") not in ("allow_all", "allow_adult", "dont_allow"):
        raise GoogleError(400, "personGeneration must be one of allow_all, allow_adult, dont_allow.")
    return VideoAsk(model, prompt, aspect, resolution, duration)


@dataclass
class Operation:
    """A Veo operation: its job and what it makes, at the file it will name."""

    job: SimJob
    ask: VideoAsk
    file_id: str

    @property
    def name(self) -> str:
        return f"models/{self.ask.model}/operations/{self.job.id}"

    def view(self) -> dict[str, Any]:
        """The operation as GET answers it: a name while it runs, then its error or its response."""
        phase = self.job.phase()
        if not phase.ended:
            return {"name": self.name}
        done: dict[str, Any] = {"name": self.name, "done": True}
        if self.job.fault is Fault.failed:
            return done | {"error": {"code": 13, "message": INTERNAL}}
        answer: dict[str, Any]
        if self.job.fault in (Fault.moderation, Fault.moderation_output):
            reason = VEO_INPUT_REFUSED if self.job.fault is Fault.moderation else VEO_OUTPUT_FILTERED
            answer = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [reason]}
        else:
            answer = {"generatedSamples": [{"video": {"uri": FILES_URI.format(id=self.file_id)}}]}
        kind = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
        return done | {"response": {"@type": kind, "generateVideoResponse": answer}}


def router(sim: Simulator) -> APIRouter:
    api = APIRouter()
    account = Account()

    sim.keeps_fresh(account, Account)  # a reset starts the account afresh
    hosted = Hosted(sim, PREFIX)
    hosted.route(api)
    operations: dict[str, Operation] = {}  # Veo operations by id
    files: dict[str, Operation] = {}  # and by the id of the file each names
    sim.on_reset(operations.clear)
    sim.on_reset(files.clear)

    def quota(model: str, imagen: bool) -> None:
        """Billing and the day's quota, checked after the request is read, as Google's frontend does."""
        if not account.billing_enabled and imagen:
            raise GoogleError(400, "Imagen API is only accessible to billed users at this time.")
        if account.billing_enabled and not account.daily_quota_exhausted:
            return
        free = not account.billing_enabled  # image models have no free tier: its limit is 0
        metric = "generate_content_free_tier_requests" if free else "generate_requests_per_model_per_day"
        quota_id = "GenerateRequestsPerDayPerProjectPerModel" + ("-FreeTier" if free else "")
        limit = 0 if free else 250
        message = (
            "You exceeded your current quota, please check your plan and billing details. For more information "
            f"on this error, head to: {RATE_LIMITS_DOC}. To monitor your current usage, head to: "
            f"https://ai.dev/rate-limit. \n* Quota exceeded for metric: generativelanguage.googleapis.com/{metric}, "
            f"limit: {limit}, model: {model}\nPlease retry in 3600s."
        )
        help_link = {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more about Gemini API quotas", "url": RATE_LIMITS_DOC}],
        }
        raise GoogleError(
            429,
            message,
            [
                help_link,
                _quota_failure(quota_id, metric, model),
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3600s"},
            ],
        )

    async def generate_content(request: Request, model: str) -> Response:
        asked = _image_request(model, await _json_body(request))
        quota(model, imagen=False)
        job = start_job(sim, VENDOR, asked.spec.latency_s, asked.log, faults=JOB_FAULTS)
        await asyncio.sleep(job.latency)
        if job.fault is Fault.failed:
            raise GoogleError(500, INTERNAL)
        answer: dict[str, Any] = {"modelVersion": model, "responseId": secrets.token_urlsafe(16)}
        if job.fault is Fault.moderation:
            reason = sim.random.choice(("SAFETY", "PROHIBITED_CONTENT", "OTHER"))
            feedback: dict[str, Any] = {"blockReason": reason}
            if reason == "SAFETY":
                feedback["safetyRatings"] = [
                    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "HIGH", "blocked": True}
                ]
            return JSONResponse({"promptFeedback": feedback, "usageMetadata": asked.usage(), **answer})
        if job.fault is Fault.moderation_output:
            # The image was made and blocked: no content, the image finish reason says why.
            reason = sim.random.choice(("IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"))
            candidate = {"finishReason": reason, "index": 0}
            return JSONResponse({"candidates": [candidate], "usageMetadata": asked.usage(), **answer})
        parts: list[dict[str, Any]] = []
        if asked.include_thoughts:
            thought = f"**Composing the image**\n\nPlanning the layout for: {asked.prompt.text[:80]}"
            parts.append({"text": thought, "thought": True})
        text = ""
        if "TEXT" in asked.modalities:
            text = (
                f"Here is the image: {asked.prompt.text[:80]}"
                if "IMAGE" in asked.modalities
                else asked.prompt.text
            )
            parts.append({"text": text})
        if "IMAGE" in asked.modalities:
            width, height = asked.frame
            mime = asked.spec.mime
            data = await run_in_threadpool(_render, sim, asked.prompt.text or "an edit", width, height, mime)
            image: dict[str, Any] = {"inlineData": {"mimeType": mime, "data": _b64(data)}}
            if asked.spec.thinking:
                image["thoughtSignature"] = _b64(uuid.uuid4().bytes * 2)
            parts.append(image)
        candidate = {"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}
        usage = asked.usage(text, "IMAGE" in asked.modalities)
        return JSONResponse({"candidates": [candidate], "usageMetadata": usage, **answer})

    async def predict(request: Request, model: str) -> Response:
        spec = IMAGEN_MODELS[model]
        body = _known(await _json_body(request), {"instances", "parameters"}, "")
        instances = body.get("instances")
        if not isinstance(instances, list) or len(instances) != 1:
            raise GoogleError(400, "Exactly one instance is required: instances must hold one {prompt}.")
        instance = _known(instances[0], {"prompt"}, "instances[0]")
        prompt = instance.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise GoogleError(400, "The prompt is empty: instances[0].prompt is required.")
        parameters = body.get("parameters") or {}
        for name in IMAGEN_REFUSED:
            if name in (parameters if isinstance(parameters, dict) else {}):
                raise GoogleError(400, f"{name} parameter is not supported in Gemini API.")
        parameters = _known(parameters, IMAGEN_PARAMETERS, "parameters")
        count = parameters.get("sampleCount", 4)
        if type(count) is not int or not 1 <= count <= 4:
            raise GoogleError(400, f"sampleCount must be an integer from 1 to 4, got {count!r}.")
        aspect = parameters.get("aspectRatio", "1:1")
        if aspect not in IMAGEN_SIZES:
            raise GoogleError(
                400, f"Unsupported aspect ratio: {aspect}. Supported: {', '.join(IMAGEN_SIZES)}."
            )
        person = str(parameters.get("personGeneration", "allow_adult")).lower()
        if person not in PERSON_GENERATION:
            raise GoogleError(400, f"personGeneration must be one of {', '.join(PERSON_GENERATION)}.")
        safety = str(parameters.get("safetySetting", "block_low_and_above")).lower()
        if safety not in SAFETY_SETTINGS:
            raise GoogleError(400, f"safetySetting {safety} is not supported in Gemini API.")
        image_size = parameters.get("sampleImageSize", "1K")
        if "sampleImageSize" in parameters and image_size not in spec.image_sizes:
            supported = ", ".join(spec.image_sizes) or "none: this model has one size"
            raise GoogleError(
                400, f"sampleImageSize {image_size} is not supported for {model} ({supported})."
            )
        options = _known(
            parameters.get("outputOptions"), {"mimeType", "compressionQuality"}, "parameters.output_options"
        )
        mime = options.get("mimeType", "image/png")
        if mime not in ("image/png", "image/jpeg"):
            raise GoogleError(400, f"Unsupported output mime type: {mime}. Use image/png or image/jpeg.")
        quality = options.get("compressionQuality", 75)
        if type(quality) is not int or not 0 <= quality <= 100:
            raise GoogleError(400, "outputOptions.compressionQuality must be an integer from 0 to 100.")
        quota(model, imagen=True)

        job = start_job(
            sim, VENDOR, spec.latency_s, {"model": model, "aspect": aspect, "count": count}, faults=JOB_FAULTS
        )
        await asyncio.sleep(job.latency)
        if job.fault is Fault.failed:
            raise GoogleError(500, INTERNAL)
        if job.fault is Fault.moderation:
            raise GoogleError(400, PROMPT_REFUSED)
        if job.fault is Fault.moderation_output:
            # Filtered images are dropped; with includeRaiReason a prediction says why.
            if parameters.get("includeRaiReason"):
                return JSONResponse({"predictions": [{"raiFilteredReason": RAI_REASON.format(n=count)}]})
            return JSONResponse({})
        width, height = IMAGEN_SIZES[aspect]
        scale = 2 if image_size == "2K" else 1
        data = [
            await run_in_threadpool(_render, sim, f"{prompt} #{i + 1}", width * scale, height * scale, mime)
            for i in range(count)
        ]
        predictions: list[dict[str, Any]] = [{"mimeType": mime, "bytesBase64Encoded": _b64(d)} for d in data]
        if parameters.get("includeSafetyAttributes"):
            attributes = {"categories": [], "scores": []}
            for prediction in predictions:
                prediction["safetyAttributes"] = attributes
            predictions.append({"safetyAttributes": attributes, "contentType": "Positive Prompt"})
        return JSONResponse({"predictions": predictions})

    async def predict_long_running(request: Request, model: str) -> Response:
        ask = _video_request(model, await _json_body(request))
        quota(model, imagen=False)
        job = start_job(sim, VENDOR, VEO_MODELS[model].latency_s, ask.log, faults=VIDEO_FAULTS,
                        job_id=uuid.uuid4().hex[:12])  # fmt: skip
        operation = Operation(job, ask, uuid.uuid4().hex[:12])
        operations[job.id] = files[operation.file_id] = operation
        width, height = ask.frame
        hosted.put(
            f"{operation.file_id}.mp4",
            lambda: media.clip(ask.prompt or "a picture set in motion", width, height, ask.duration, VEO_FPS),
            "video/mp4",
            shape=(VENDOR, "veo", width, height, ask.duration),
            ready_at=job.ends,
            fault=job.fault,
        )
        return JSONResponse({"name": operation.name})

    @api.get("/{version}/models/{model}/operations/{operation_id}")
    async def get_operation(version: str, model: str, operation_id: str, request: Request) -> Response:
        try:
            _authorise(request)
            operation = operations.get(operation_id)
            if operation is None or operation.ask.model != model or version not in VERSIONS:
                raise GoogleError(404, f"Operation not found: models/{model}/operations/{operation_id}")
            return JSONResponse(operation.view())
        except GoogleError as exc:
            return error_response(exc.status, exc.message, details=exc.details)

    @api.get("/{version}/files/{target}")
    async def download_file(version: str, target: str, request: Request) -> Response:
        """A made video's bytes, for the key's owner: a redirect to a signed link that expires."""
        try:
            _authorise(request)
            file_id, _, method = target.partition(":")
            operation = files.get(file_id)
            if method != "download" or operation is None or operation.job.phase() is not Phase.succeeded:
                raise GoogleError(404, f"File files/{file_id} not found or not downloadable.")
            if request.query_params.get("alt") != "media":
                raise GoogleError(400, "files.download needs alt=media.")
            return Response(status_code=302, headers={"location": hosted.url(request, f"{file_id}.mp4")})
        except GoogleError as exc:
            return error_response(exc.status, exc.message, details=exc.details)

    @api.post("/{version}/models/{target}")
    async def model_method(version: str, target: str, request: Request) -> Response:
        try:
            _authorise(request)
            model, _, method = target.removeprefix("models/").partition(":")
            if method == "generateContent" and version in VERSIONS and model in GEMINI_MODELS:
                return await generate_content(request, model)
            if method == "predict" and version == "v1beta" and model in IMAGEN_MODELS:
                return await predict(request, model)
            if method == "predictLongRunning" and version == "v1beta" and model in VEO_MODELS:
                return await predict_long_running(request, model)
            raise _not_found(model, version, method or "generateContent")
        except GoogleError as exc:
            return error_response(exc.status, exc.message, details=exc.details)

    @api.get("/_sim/account")
    async def get_account() -> dict[str, Any]:
        return vars(account)

    @api.post("/_sim/account")
    async def set_account(changes: dict[str, Any]) -> Response:
        unknown = set(changes) - set(vars(account))
        if unknown:
            return JSONResponse({"error": f"unknown account settings: {sorted(unknown)}"}, status_code=400)
        for name, value in changes.items():
            setattr(account, name, bool(value))
        return JSONResponse(vars(account))

    return api
