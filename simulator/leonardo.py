"""Leonardo.ai's Production API v1 (`https://cloud.leonardo.ai/api/rest/v1`), image generation as Cutroom uses it.

Covered: `POST /generations`, `GET|DELETE /generations/{id}`, `GET /me`, `POST /init-image` with the presigned S3
upload it hands out (the simulator hosts the bucket too), video from the motion models (`POST
/generations-image-to-video` from an UPLOADED init image or a GENERATED image, `POST /generations-text-to-video`,
the clip at `generated_images[0].motionMP4URL`), outputs on a CDN through Hosted. Leonardo serves its REST
API from Hasura: request bodies are GraphQL variables, so type errors, unknown fields and missing `prompt` come back
as Hasura errors (`code: validation-failed`), a missing generation is `{"generations_by_pk": null}` with 200, and the
action's own refusals are 400 `{"error", "path": "$", "code": "unexpected"}`.

Sources: ../shared/providers/leonardo.md (npm @leonardo-ai/sdk 4.21.3 wire names); Leonardo's OpenAPI (as mirrored
by api-evangelist/leonardo-ai: field ranges, enums, `cost`, `/me`, `/init-image`); docs.leonardo.ai pages "API Error
Messages" (both auth errors, "invalid file extension"), "Handle NSFW" (400 `content moderation filter: <term>`;
`nsfw: true` on images), "How to upload an image using a presigned URL" (multipart POST of `fields` + file, 2 min
expiry), the Phoenix / Flux / Lucid guides (model UUIDs, `contrast` required, alchemy needs contrast >= 2.5) and
"Limits" (10 concurrent jobs). Unverified (u): the auth errors' statuses (500 for a malformed key, 401 for none),
Hasura's exact validation texts and paths, refusing unknown fields, the 429 / insufficient-token bodies, the token
prices, how an init image that is not an image is refused (here: S3 takes any bytes, as S3 does, and the create
answers 400), and the max side of Lucid models; for video, each model's durations, resolutions, frames, end-frame support and
token price (the models' guides and third-party listings).
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from simulator.core import Fault, Simulator
from simulator.jobs import JOB_FAULTS, Phase, SimJob, start_job
from simulator.media import MIME, clip, image_size, still
from simulator.outputs import Hosted

VENDOR = "leonardo"
PREFIX = "/leonardo"
API = "/api/rest/v1"
#: Leonardo API keys are UUIDs; any well-formed one is accepted.
SIMULATOR_KEY = "3c9d2f4e-7a1b-4c8d-9e2f-5a6b7c8d9e0f"
USER_ID = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: The OpenAPI's default modelId (Leonardo Lightning XL) when none is sent.
DEFAULT_MODEL = "b24e16ff-06e3-43eb-8d33-4416c2d75876"
UPLOAD_TTL_S = 120.0  # docs: "The presigned URL expires in 2 minutes"
INIT_EXTENSIONS = ("png", "jpg", "jpeg", "webp")
CONTRASTS = (1.0, 1.3, 1.8, 2.5, 3, 3.5, 4, 4.5)
MAX_PROMPT = 1500  # (u)


@dataclass(frozen=True)
class Model:
    name: str
    family: str  # phoenix | flux | lucid | sdxl
    latency_s: float
    #: (u) API tokens per 1024x1024 image in fast mode; alchemy (quality) doubles it.
    tokens: int
    max_side: int = 1536
    seed_max: int = 9_999_999_998  # OpenAPI: "2147483637 for Flux and 9999999998 for other models"
    #: The Phoenix, Flux and Lucid guides mark `contrast` "Required".
    needs_contrast: bool = False


MODELS = {
    "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3": Model("Leonardo Phoenix 1.0", "phoenix", 12.0, 12, needs_contrast=True),
    "6b645e3a-d64f-4341-a6d8-7a3690fbf042": Model("Leonardo Phoenix 0.9", "phoenix", 12.0, 12, needs_contrast=True),
    "1dd50843-d653-4516-a8e3-f0238ee453ff": Model("Flux Schnell", "flux", 5.0, 5, seed_max=2_147_483_637,
                                                  needs_contrast=True),
    "b2614463-296c-462a-9586-aafdb8f00e36": Model("Flux Dev", "flux", 10.0, 10, seed_max=2_147_483_637,
                                                  needs_contrast=True),
    # The Lucid guides send 1920x1080, beyond the OpenAPI's 1536: (u) 2048 allowed.
    "7b592283-e8a7-4c5a-9ba6-d18c31f258b9": Model("Lucid Origin", "lucid", 15.0, 14, 2048, needs_contrast=True),
    "05ce0082-2d80-4a2d-8653-4d1c85e2418e": Model("Lucid Realism", "lucid", 15.0, 14, 2048, needs_contrast=True),
    DEFAULT_MODEL: Model("Leonardo Lightning XL", "sdxl", 6.0, 6),
    "aa77f04e-3eec-4034-9c07-d0f619684628": Model("Leonardo Kino XL", "sdxl", 8.0, 8),  # (u) id
    "1e60896f-3c26-4296-8ecc-53e2afecc132": Model("Leonardo Diffusion XL", "sdxl", 8.0, 8),  # (u) id
}  # fmt: skip

#: The GraphQL variables of the createGeneration action, by Hasura scalar type (OpenAPI, plus styleUUID from the
#: model guides). Anything else in the body is an unexpected variable.
BOOLEANS = (
    "alchemy", "expandedDomain", "fantasyAvatar", "highContrast", "highResolution", "photoReal",
    "promptMagic", "public", "tiling", "ultra", "unzoom", "controlNet", "canvasRequest", "enhancePrompt",
)  # fmt: skip
INTS = ("height", "width", "num_images", "num_inference_steps", "seed")
FLOATS = (
    "contrastRatio", "contrast", "guidance_scale", "imagePromptWeight", "init_strength",
    "photoRealStrength", "promptMagicStrength", "unzoomAmount", "upscaleRatio", "weighting",
)  # fmt: skip
STRINGS = (
    "prompt", "negative_prompt", "modelId", "init_image_id", "init_generation_image_id", "photoRealVersion",
    "promptMagicVersion", "canvasInitId", "canvasMaskId", "enhancePromptInstruction", "styleUUID",
)  # fmt: skip
LISTS = ("imagePrompts", "controlnets", "elements", "userElements")
ENUMS = {
    "presetStyle": ("sd_generation_style", (
        "ANIME", "BOKEH", "CINEMATIC", "CINEMATIC_CLOSEUP", "CREATIVE", "DYNAMIC", "ENVIRONMENT", "FASHION", "FILM",
        "FOOD", "GENERAL", "HDR", "ILLUSTRATION", "LEONARDO", "LONG_EXPOSURE", "MACRO", "MINIMALISTIC", "MONOCHROME",
        "MOODY", "NONE", "NEUTRAL", "PHOTOGRAPHY", "PORTRAIT", "RAYTRACED", "RENDER_3D", "RETRO", "SKETCH_BW",
        "SKETCH_COLOR", "STOCK_PHOTO", "VIBRANT", "UNPROCESSED",
    )),
    "scheduler": ("sd_generation_schedulers", (
        "KLMS", "EULER_ANCESTRAL_DISCRETE", "EULER_DISCRETE", "DDIM", "DPM_SOLVER", "PNDM", "LEONARDO",
    )),
    "sd_version": ("sd_versions", (
        "v1_5", "v2", "v3", "SDXL_0_8", "SDXL_0_9", "SDXL_1_0", "SDXL_LIGHTNING", "PHOENIX", "FLUX", "FLUX_DEV",
        "KINO_2_0",
    )),
    "transparency": ("TransparencyType", ("disabled", "foreground_only")),
    "controlNetType": ("controlnet_type", ("POSE", "CANNY", "DEPTH")),
    "canvasRequestType": ("canvasRequestType", ("INPAINT", "OUTPAINT", "SKETCH2IMG", "IMG2IMG")),
}  # fmt: skip
VARIABLES = {*BOOLEANS, *INTS, *FLOATS, *STRINGS, *LISTS, *ENUMS}


@dataclass(frozen=True)
class VideoModel:
    latency_s: float
    durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    #: (u) API tokens per second of clip.
    tokens_per_s: int
    end_frame: bool = False


#: The image-to-video `model` enum (npm SDK 4.21.3); (u) the bounds of each.
VIDEO_MODELS = {
    "MOTION2": VideoModel(60.0, (5,), ("RESOLUTION_480", "RESOLUTION_720"), 40),
    "MOTION2FAST": VideoModel(30.0, (5,), ("RESOLUTION_480", "RESOLUTION_720"), 20),
    "VEO3": VideoModel(90.0, (4, 6, 8), ("RESOLUTION_720", "RESOLUTION_1080"), 200),
    "VEO3FAST": VideoModel(45.0, (4, 6, 8), ("RESOLUTION_720", "RESOLUTION_1080"), 75),
    "KLING2_1": VideoModel(120.0, (5, 10), ("RESOLUTION_720", "RESOLUTION_1080"), 28, end_frame=True),
    "KLING2_5": VideoModel(90.0, (5, 10), ("RESOLUTION_720", "RESOLUTION_1080"), 35, end_frame=True),
}
#: The short side of each resolution; a frame's long side may be up to 16:9 of it.
SHORT_SIDES = {"RESOLUTION_480": 480, "RESOLUTION_720": 720, "RESOLUTION_1080": 1080}
IMAGE_TYPES = ("GENERATED", "UPLOADED")
#: The variables of the image-to-video action (leonardo.md); text-to-video takes the same but no frames.
VIDEO_VARIABLES = {
    "prompt": str, "imageId": str, "imageType": str, "model": str, "resolution": str, "duration": int,
    "endFrameImage": dict, "negativePrompt": str, "promptEnhance": bool, "frameInterpolation": bool, "seed": int,
    "styleIds": list, "elements": list, "width": int, "height": int, "isPublic": bool,
}  # fmt: skip
FRAME_VARIABLES = ("imageId", "imageType", "endFrameImage")
#: Stand-in clips are rendered small (right aspect, real codec) so tests stay fast.
RENDER_SHORT_SIDE = 360


def error_response(status: int, message: str, retry_after: float | None = None, **extra: Any) -> Response:
    """Hasura's error body `{"error", "path", "code"}`, with Retry-After when there is one."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    body = {
        "error": message,
        "path": "$",
        "code": "access-denied" if status == 401 else "unexpected",
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _refused(message: str) -> Response:
    """An action's own refusal (moderation, ranges, tokens): 400 with code `unexpected`."""
    return error_response(400, message)


def _invalid(message: str, path: str = "$") -> Response:
    """A Hasura validation failure of the GraphQL variables."""
    return error_response(400, message, code="validation-failed", path=path)


def _check_auth(request: Request) -> Response | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return error_response(401, "Authentication hook unauthorized this request")
    if not UUID_RE.match(key.strip()):
        # Leonardo's auth hook chokes on a key that is not a UUID and Hasura answers 500 (docs; status (u)).
        return error_response(500, "Invalid response from authorization hook")
    return None


def _found(value: Any) -> str:
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
             dict: "an object"}  # fmt: skip
    return kinds.get(type(value), "null")


def _type_error(body: dict[str, Any]) -> Response | None:
    """Hasura's check of each variable against its GraphQL type; null is fine (every field is nullable)."""
    for name, value in body.items():
        if value is None:
            continue
        path = f"$.selectionSet.sdGenerationJob.args.arg1.{name}"
        expected = None
        if name in BOOLEANS and not isinstance(value, bool):
            expected = "a boolean for type 'Boolean'"
        elif name in INTS and (isinstance(value, bool) or not isinstance(value, int)):
            expected = "a 32-bit integer for type 'Int'" if name != "seed" else "an integer for type 'seed'"
        elif name in FLOATS and (isinstance(value, bool) or not isinstance(value, int | float)):
            expected = "a float for type 'Float'"
        elif name in STRINGS and not isinstance(value, str):
            expected = "a string for type 'String'"
        elif name in LISTS and not isinstance(value, list):
            expected = "a list"
        elif name in ENUMS and value not in ENUMS[name][1]:
            type_name, values = ENUMS[name]
            return _invalid(
                f"expected one of the values {list(values)} for type '{type_name}', but found {json.dumps(value)}",
                path,
            )
        if expected:
            return _invalid(f"expected {expected}, but found {_found(value)}", path)
    return None


@dataclass
class InitImage:
    id: str
    extension: str
    created: float
    data: bytes | None = None


@dataclass
class Generation:
    id: str
    job: SimJob
    model_id: str
    body: dict[str, Any]
    width: int
    height: int
    images: list[str]
    extension: str
    created_at: str
    #: A video generation's clip length; None for images.
    duration: int | None = None

    def status(self, now: float | None = None) -> str:
        phase = self.job.phase(now)
        if phase is Phase.failed:
            return "FAILED"
        return "PENDING" if not phase.ended else "COMPLETE"


@dataclass
class Limits:
    concurrency: int = 10  # docs.leonardo.ai "Limits": 10 concurrent image generation jobs by default
    api_tokens: int = 100_000


@dataclass
class State:
    limits: Limits = field(default_factory=Limits)
    generations: dict[str, Generation] = field(default_factory=dict)
    #: Jobs still running, deleted or not: a deleted generation keeps its slot until it would have ended (u).
    jobs: list[SimJob] = field(default_factory=list)
    #: Generated image id -> generation id, for init_generation_image_id.
    images: dict[str, str] = field(default_factory=dict)
    init_images: dict[str, InitImage] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _tokens(model: Model, body: dict[str, Any], width: int, height: int, count: int) -> int:
    """(u) A job's API token cost: the model's price per megapixel-image, doubled by alchemy (quality)."""
    per_image = model.tokens * max(0.25, width * height / (1024 * 1024)) * (2 if body.get("alchemy") else 1)
    return max(1, math.ceil(per_image * count))


def _timestamp() -> str:
    """Hasura's `timestamp` (without time zone), as Leonardo's createdAt reads."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def router(sim: Simulator) -> APIRouter:
    state = State()

    def forget() -> None:
        with state.lock:  # a reset starts the account afresh: no generation of an earlier test holds a slot
            state.limits = Limits()
            state.generations.clear()
            state.jobs.clear()
            state.images.clear()
            state.init_images.clear()

    sim.on_reset(forget)
    api = APIRouter()
    cdn = Hosted(sim, PREFIX)

    def check_inputs(body: dict[str, Any]) -> Response | None:
        """Init images and image prompts must name an uploaded image; a generated image one we made."""
        ids = [body["init_image_id"]] if body.get("init_image_id") else []
        ids += [i for i in body.get("imagePrompts") or [] if isinstance(i, str)]
        for image_id in ids:
            init = state.init_images.get(image_id)
            if init is None or init.data is None:
                return _refused(f"Init image {image_id} not found or not uploaded")
            if image_size(init.data) is None:
                # S3 took the bytes as S3 does; the action refuses them (u: Leonardo's exact answer).
                return _refused(f"Init image {image_id} is not a valid {init.extension} image")
        generated = body.get("init_generation_image_id")
        if generated and generated not in state.images:
            return _refused(f"Generated image {generated} not found")
        strength = body.get("init_strength")
        if strength is not None and not 0.1 <= strength <= 0.9:
            return _refused("init_strength must be a float between 0.1 and 0.9")
        return None

    def check_ranges(model: Model, body: dict[str, Any]) -> Response | None:
        prompt = body["prompt"]
        if not prompt.strip():
            return _refused("prompt must not be empty")
        if len(prompt) > MAX_PROMPT:
            return _refused(f"prompt length must be at most {MAX_PROMPT} characters")
        width, height = body.get("width", 1024), body.get("height", 768)
        for name, side in (("width", width), ("height", height)):
            if not 32 <= side <= model.max_side or side % 8:
                return _refused(f"{name} must be between 32 and {model.max_side} and be a multiple of 8")
        most = 4 if max(width, height) > 768 else 8
        if not 1 <= body.get("num_images", 4) <= most:
            return _refused(f"num_images must be between 1 and {most} at {width}x{height}")
        if not 10 <= body.get("num_inference_steps", 15) <= 60:
            return _refused("num_inference_steps must be between 10 and 60")
        if not 1 <= body.get("guidance_scale", 7) <= 20:
            return _refused("guidance_scale must be between 1 and 20")
        if not 0 <= body.get("seed", 0) <= model.seed_max:
            return _refused(f"seed must be between 0 and {model.seed_max} for {model.name}")
        contrast = body.get("contrast")
        if contrast is None and model.needs_contrast:
            return _refused(f"contrast is required for {model.name}")
        if contrast is not None and contrast not in CONTRASTS:
            return _refused(f"contrast must be one of {list(CONTRASTS)}")
        if contrast is not None and body.get("alchemy") and model.family == "phoenix" and contrast < 2.5:
            return _refused("contrast must be 2.5 or higher when alchemy is true")
        if body.get("alchemy") and body.get("ultra"):
            return _refused("ultra can not be used with alchemy")
        return check_inputs(body)

    def view(request: Request, generation: Generation) -> dict[str, Any]:
        status = generation.status()
        body = generation.body
        images = []
        if status == "COMPLETE":
            nsfw = generation.job.fault is Fault.moderation_output  # Leonardo flags, it does not block
            video = generation.duration is not None
            images = [
                {"id": image_id, "url": cdn.url(request, f"{image_id}.{'jpg' if video else generation.extension}"),
                 "nsfw": nsfw, "likeCount": 0,
                 "motionMP4URL": cdn.url(request, f"{image_id}.mp4") if video else None,
                 "generated_image_variation_generics": []}
                for image_id in generation.images
            ]  # fmt: skip
        return {
            "generations_by_pk": {
                "id": generation.id,
                "status": status,
                "createdAt": generation.created_at,
                "prompt": body["prompt"],
                "negativePrompt": body.get("negative_prompt"),
                "imageWidth": generation.width,
                "imageHeight": generation.height,
                "inferenceSteps": body.get("num_inference_steps", 15),
                "guidanceScale": body.get("guidance_scale", 7),
                "modelId": generation.model_id,
                "presetStyle": body.get("presetStyle", "DYNAMIC"),
                "scheduler": body.get("scheduler", "EULER_DISCRETE"),
                "seed": body.get("seed", 0),
                "public": body.get("public", False),
                "photoReal": body.get("photoReal", False),
                "photoRealStrength": body.get("photoRealStrength"),
                "promptMagic": body.get("promptMagic", False),
                "initStrength": body.get("init_strength"),
                "ultra": body.get("ultra", False),
                "sdVersion": body.get("sd_version"),
                "generated_images": images,
                "generation_elements": [],
            }
        }

    async def json_body(request: Request) -> dict[str, Any] | Response:
        try:
            body = await request.json()
        except ValueError:
            return error_response(
                400, "Error in $: Failed reading: not a valid json value", code="invalid-json"
            )
        if not isinstance(body, dict):
            return error_response(400, "Error in $: expected Object", code="parse-failed")
        return body

    @api.post(API + "/generations")
    async def create_generation(request: Request) -> Response:
        if (refused := _check_auth(request)) is not None:
            return refused
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        if unknown := sorted(set(body) - VARIABLES):
            return _invalid(f"unexpected variables in variableValues: {', '.join(unknown)}")
        if (refused := _type_error(body)) is not None:
            return refused
        body = {k: v for k, v in body.items() if v is not None}
        if "prompt" not in body:
            return _invalid('expecting a value for non-nullable variable: "prompt"')
        model_id = body.get("modelId", DEFAULT_MODEL)
        if model_id not in MODELS:
            if not UUID_RE.match(model_id):
                return error_response(
                    400, f'invalid input syntax for type uuid: "{model_id}"', code="data-exception"
                )
            return _refused(f"Model {model_id} not found")  # (u)
        model = MODELS[model_id]
        if (refused := check_ranges(model, body)) is not None:
            return refused
        fault = sim.draw(*JOB_FAULTS)
        if fault is Fault.moderation:
            # Leonardo refuses a flagged prompt at once, naming the term (docs' example: "naked").
            term = re.findall(r"[A-Za-z]+", body["prompt"])[:1] or ["prompt"]
            return _refused(f"content moderation filter: {term[0].lower()}")
        width, height, count = body.get("width", 1024), body.get("height", 768), body.get("num_images", 4)
        tokens = _tokens(model, body, width, height, count)
        with state.lock:
            state.jobs = [job for job in state.jobs if not job.phase().ended]
            if len(state.jobs) >= state.limits.concurrency:
                return error_response(
                    429, f"You have reached your concurrency limit of {state.limits.concurrency} generations"
                )
            if state.limits.api_tokens < tokens:
                return _refused(
                    f"Not enough API tokens: this generation costs {tokens}, you have {state.limits.api_tokens}"
                )
            state.limits.api_tokens -= tokens
            job = start_job(sim, VENDOR, model.latency_s, body, faults=())
            job.fault = fault
            state.jobs.append(job)
            extension = "png" if body.get("transparency") == "foreground_only" else "jpg"
            generation = Generation(
                id=job.id, job=job, model_id=model_id, body=body, width=width, height=height,
                images=[str(uuid.uuid4()) for _ in range(count)], extension=extension, created_at=_timestamp(),
            )  # fmt: skip
            state.generations[job.id] = generation
        if fault is not Fault.failed:
            for image_id in generation.images:
                state.images[image_id] = generation.id
                cdn.put(
                    f"{image_id}.{extension}",
                    lambda: still(body["prompt"], width, height, extension),
                    MIME[extension],
                    shape=(VENDOR, model_id, width, height, extension),
                    ready_at=job.ends,
                    fault=fault,
                )
        return JSONResponse(
            {
                "sdGenerationJob": {
                    "generationId": generation.id,
                    "apiCreditCost": tokens,
                    "cost": {"amount": str(tokens), "unit": "CREDITS"},
                }
            }
        )

    def check_video(body: dict[str, Any], frames: bool) -> Response | VideoModel:
        """The motion action's checks: its variables and types, the model's bounds, the frames it names."""
        allowed = set(VIDEO_VARIABLES) - (set() if frames else set(FRAME_VARIABLES))
        if unknown := sorted(set(body) - allowed):
            return _invalid(f"unexpected variables in variableValues: {', '.join(unknown)}")
        for name, value in body.items():
            kind = VIDEO_VARIABLES[name]
            if value is not None and (
                not isinstance(value, kind) or (kind is int and isinstance(value, bool))
            ):
                return _invalid(
                    f"expected {kind.__name__} for {name}, but found {_found(value)}", f"$.{name}"
                )
        required = ("prompt", "imageId", "imageType") if frames else ("prompt",)
        if missing := next((name for name in required if body.get(name) is None), None):
            return _invalid(f'expecting a value for non-nullable variable: "{missing}"')
        name = body.get("model", "MOTION2")
        model = VIDEO_MODELS.get(name)
        if model is None:
            return _invalid(f"expected one of the values {list(VIDEO_MODELS)} for type 'MotionModel', "
                            f"but found {json.dumps(name)}", "$.model")  # fmt: skip
        if not body["prompt"].strip() or len(body["prompt"]) > MAX_PROMPT:
            return _refused(f"prompt must be 1 to {MAX_PROMPT} characters")
        resolution = body.get("resolution", model.resolutions[0])
        if resolution not in model.resolutions:
            return _refused(f"{name} supports resolution {', '.join(model.resolutions)}")
        duration = body.get("duration", model.durations[0])
        if duration not in model.durations:
            return _refused(f"{name} supports duration {', '.join(map(str, model.durations))} seconds")
        width, height = body.get("width"), body.get("height")
        if width is not None or height is not None:
            short, long = sorted((width or 0, height or 0))
            if short != SHORT_SIDES[resolution] or long * 9 > short * 16 + 16 * 9 or long % 8:
                return _refused(f"width and height do not match {resolution}")
        if frames:
            if body["imageType"] not in IMAGE_TYPES:
                return _refused(f"imageType must be one of {list(IMAGE_TYPES)}")
            if (refused := frame_image(body["imageId"], body["imageType"])) is not None:
                return refused
            end = body.get("endFrameImage")
            if end is not None:
                if not model.end_frame:
                    return _refused(f"{name} does not support endFrameImage")
                if set(end) != {"id", "type"} or end["type"] not in IMAGE_TYPES:
                    return _invalid("endFrameImage needs id and type", "$.endFrameImage")
                if (refused := frame_image(end["id"], end["type"])) is not None:
                    return refused
        return model

    def frame_image(image_id: Any, image_type: str) -> Response | None:
        """An UPLOADED frame is an init image with bytes; a GENERATED one an image a generation made."""
        if image_type == "UPLOADED":
            init = state.init_images.get(image_id)
            if init is None or init.data is None:
                return _refused(f"Init image {image_id} not found or not uploaded")
            if image_size(init.data) is None:
                return _refused(f"Init image {image_id} is not a valid {init.extension} image")
            return None
        generation = state.generations.get(state.images.get(image_id, ""))
        if generation is None or generation.duration is not None:
            return _refused(f"Generated image {image_id} not found")
        return None

    async def create_video(request: Request, frames: bool) -> Response:
        if (refused := _check_auth(request)) is not None:
            return refused
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        checked = check_video(body, frames)
        if isinstance(checked, Response):
            return checked
        model, name = checked, body.get("model", "MOTION2")
        fault = sim.draw(*JOB_FAULTS)
        if fault is Fault.moderation:
            term = re.findall(r"[A-Za-z]+", body["prompt"])[:1] or ["prompt"]
            return _refused(f"content moderation filter: {term[0].lower()}")
        resolution = body.get("resolution", model.resolutions[0])
        short = SHORT_SIDES[resolution]
        width, height = body.get("width") or short * 16 // 9 // 8 * 8, body.get("height") or short
        duration = body.get("duration", model.durations[0])
        tokens = model.tokens_per_s * duration
        with state.lock:
            state.jobs = [job for job in state.jobs if not job.phase().ended]
            if len(state.jobs) >= state.limits.concurrency:
                return error_response(
                    429, f"You have reached your concurrency limit of {state.limits.concurrency} generations"
                )
            if state.limits.api_tokens < tokens:
                return _refused(
                    f"Not enough API tokens: this generation costs {tokens}, you have {state.limits.api_tokens}"
                )
            state.limits.api_tokens -= tokens
            job = start_job(sim, VENDOR, model.latency_s, body, faults=())
            job.fault = fault
            state.jobs.append(job)
            generation = Generation(
                id=job.id, job=job, model_id=name, body=body, width=width, height=height,
                images=[str(uuid.uuid4())], extension="mp4", created_at=_timestamp(), duration=duration,
            )  # fmt: skip
            state.generations[job.id] = generation
        if fault is not Fault.failed:
            image_id = generation.images[0]
            state.images[image_id] = generation.id
            init = (
                state.init_images.get(body.get("imageId", ""))
                if body.get("imageType") == "UPLOADED"
                else None
            )
            start = init.data if init is not None else None
            scale = RENDER_SHORT_SIDE / min(width, height)
            small = (round(width * scale / 2) * 2, round(height * scale / 2) * 2)
            cdn.put(f"{image_id}.mp4", lambda: clip(body["prompt"], *small, duration, start=start), MIME["mp4"],
                    shape=(VENDOR, name, *small, duration), ready_at=job.ends, fault=fault)  # fmt: skip
            cdn.put(f"{image_id}.jpg", lambda: still(body["prompt"], *small, "jpg"), MIME["jpg"],
                    ready_at=job.ends, fault=fault)  # fmt: skip
        return JSONResponse(
            {
                "motionVideoGenerationJob": {
                    "generationId": generation.id,
                    "apiCreditCost": tokens,
                    "cost": {"amount": str(tokens), "unit": "CREDITS"},
                }
            }
        )

    @api.post(API + "/generations-image-to-video")
    async def image_to_video(request: Request) -> Response:
        return await create_video(request, frames=True)

    @api.post(API + "/generations-text-to-video")
    async def text_to_video(request: Request) -> Response:
        return await create_video(request, frames=False)

    def by_pk(generation_id: str) -> Response | None:
        if not UUID_RE.match(generation_id):
            return error_response(
                400, f'invalid input syntax for type uuid: "{generation_id}"', code="data-exception"
            )
        return None

    @api.get(API + "/generations/{generation_id}")
    async def get_generation(generation_id: str, request: Request) -> Response:
        if (refused := _check_auth(request) or by_pk(generation_id)) is not None:
            return refused
        generation = state.generations.get(generation_id)
        # Hasura's *_by_pk answers null for a row that is not there, with 200.
        return JSONResponse({"generations_by_pk": None} if generation is None else view(request, generation))

    @api.delete(API + "/generations/{generation_id}")
    async def delete_generation(generation_id: str, request: Request) -> Response:
        if (refused := _check_auth(request) or by_pk(generation_id)) is not None:
            return refused
        generation = state.generations.pop(generation_id, None)
        return JSONResponse(
            {"delete_generations_by_pk": None if generation is None else {"id": generation_id}}
        )

    @api.get(API + "/me")
    async def me(request: Request) -> Response:
        if (refused := _check_auth(request)) is not None:
            return refused
        return JSONResponse(
            {
                "user_details": [
                    {
                        "user": {"id": USER_ID, "username": "cutroom-simulator"},
                        "tokenRenewalDate": None,
                        "paidTokens": 0,
                        "subscriptionTokens": 0,
                        "subscriptionGptTokens": 0,
                        "subscriptionModelTokens": 0,
                        "apiConcurrencySlots": state.limits.concurrency,
                        "apiPaidTokens": state.limits.api_tokens,
                        "apiSubscriptionTokens": 0,
                        "apiPlanTokenRenewalDate": None,
                    }
                ]
            }
        )

    @api.post(API + "/init-image")
    async def upload_init_image(request: Request) -> Response:
        if (refused := _check_auth(request)) is not None:
            return refused
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        extension = body.get("extension")
        if extension is None:
            return _invalid('expecting a value for non-nullable variable: "extension"')
        if extension not in INIT_EXTENSIONS:
            return _refused("invalid file extension")  # docs: "API Error Messages"
        init = InitImage(id=str(uuid.uuid4()), extension=extension, created=time.time())
        state.init_images[init.id] = init
        key = f"users/{USER_ID}/initImages/{init.id}.{extension}"
        expires = datetime.fromtimestamp(init.created + UPLOAD_TTL_S, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        content_type = MIME[extension]
        policy = {"expiration": expires, "conditions": [{"key": key}, {"Content-Type": content_type}]}
        fields = {
            "Content-Type": content_type,
            "bucket": "leonardo-init-images",
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": "ASIASIMULATOR/20240101/us-east-1/s3/aws4_request",
            "X-Amz-Date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
            "key": key,
            "Policy": base64.b64encode(json.dumps(policy).encode()).decode(),
            "X-Amz-Signature": uuid.uuid4().hex * 2,
        }
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "uploadInitImage": {
                    "id": init.id,
                    "url": f"{base}{PREFIX}/_s3/leonardo-init-images",
                    "fields": json.dumps(fields),  # a JSON string, as Leonardo sends it
                    "key": key,
                }
            }
        )

    @api.post("/_s3/leonardo-init-images")
    async def s3_post(request: Request) -> Response:
        """The bucket's presigned POST: checks the policy's conditions, never the bytes (S3 does not look)."""
        content_type = request.headers.get("content-type", "")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + await request.body()
        )
        parts = {
            part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in (message.get_payload() if message.is_multipart() else [])
        }
        key = (parts.get("key") or b"").decode(errors="replace")
        match = re.fullmatch(rf"users/{USER_ID}/initImages/([0-9a-f-]{{36}})\.(\w+)", key)
        init = state.init_images.get(match.group(1)) if match else None
        if init is None or not parts.get("Policy") or not parts.get("X-Amz-Signature"):
            return _s3_error(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed")
        if time.time() > init.created + UPLOAD_TTL_S:
            return _s3_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        if (parts.get("Content-Type") or b"").decode() != MIME[init.extension]:
            return _s3_error(
                403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: Content-Type"
            )
        if "file" not in parts:
            return _s3_error(400, "InvalidArgument", "POST requires exactly one file upload per request.")
        init.data = parts["file"] or b""
        return Response(status_code=204)

    @api.get("/_sim/limits")
    async def get_limits() -> dict[str, Any]:
        return vars(state.limits)

    @api.post("/_sim/limits")
    async def set_limits(changes: dict[str, Any]) -> Response:
        for name, value in changes.items():
            if not hasattr(state.limits, name):
                return JSONResponse({"error": f"unknown limit {name}"}, status_code=400)
            setattr(state.limits, name, value)
        return JSONResponse(vars(state.limits))

    cdn.route(api)
    return api


def _s3_error(status: int, code: str, message: str) -> Response:
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
    return Response(body, status, media_type="application/xml")
