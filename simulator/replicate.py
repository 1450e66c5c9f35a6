"""Replicate's predictions API as the `replicate` 1.0.7 SDK calls it, for the image models Cutroom runs there.

Contract (../shared/providers/replicate.md, checked against the SDK source and public Replicate pages):
- Auth `Authorization: Bearer r8_<37 alphanumerics>` (the legacy `Token` scheme too); anything else is 401
  problem+json `{"title": "Unauthenticated", "detail": "You did not pass a valid authentication token"}`.
- `POST /v1/models/{owner}/{name}/predictions` runs an official model (the prediction's `version` reads "hidden");
  `POST /v1/predictions` runs a `version`: a 64-hex id, `owner/name:id`, or an official model's `owner/name`;
  an unknown one is 422 "Invalid version or not permitted". Both answer 201 with the Prediction.
  `GET /v1/predictions[/{id}]`, `POST /v1/predictions/{id}/cancel`, `GET /v1/models/{owner}/{name}[/versions/{id}]`
  (run() reads a version's schema) and `GET /v1/account`.
- Input is checked against the model's schema as Replicate's API does, in its gojsonschema wording: 422
  `{"title": "Input validation failed", "detail": "- input.<field>: …\\n", "status": 422, "invalid_fields": […]}`.
  Inputs a model does not take are ignored, as Replicate ignores them; unknown body properties are refused.
- Image inputs are URIs: a string that is no URI (or a data URI that does not decode) is 422 `format`; a data URI
  of bytes that are no image passes the API, as it does on Replicate, and the prediction fails when the model
  cannot open it. http(s) URLs are not fetched (offline).
- Status starting → processing → succeeded | failed | canceled, and aborted when a `Cancel-After` deadline comes
  before the prediction started (canceled when it comes while running). Outputs are real images of the model's
  size and format on a replicate.delivery-like link (`{PREFIX}/_media/…`), a list or one URL as the model has
  it; after the output lifetime the prediction reads `data_removed: true` and the link is gone.
- `Prefer: wait[=n]` holds the create up to n s (default and most 60; not scaled by latency_scale). As the SDK's
  run() documents the server: a prediction that finished in time comes back `processing` with its output,
  one that did not comes back `starting`; a GET then shows the real state.
- Faults: failed → "Prediction interrupted; please retry (code: PA)"; moderation → failed early with
  "… flagged as sensitive … (E005)"; moderation_output → the safety checker of open-weight models (flux, SD)
  drops flagged images and fails only when all are flagged (its own message; skipped with
  disable_safety_checker), partner models fail with E005; expired → the output link answers 404.
- Webhooks: a create that names a `webhook` (and whose `webhook_events_filter`, if any, has "completed") gets the
  final Prediction POSTed there once when it ends (succeeded, failed, canceled or aborted), signed as Standard
  Webhooks: `webhook-id`, `webhook-timestamp` (unix s) and `webhook-signature: v1,<base64 HMAC-SHA256 of
  "{id}.{timestamp}.{body}">` keyed with the base64 part of the secret `GET /v1/webhooks/default/secret` answers
  (`{"key": "whsec_…"}`, one per simulator), as the SDK's `Webhooks.validate` checks it. The other events
  (start, output, logs) are not posted, nor is a refused post sent again.
- Credit: a balance in USD (`{PREFIX}/_sim/billing`, GET / POST `{"balance_usd": …}`); a create that costs more
  than is left is 402 "Insufficient credit". The 600 creates/min limit is the frame's 429 fault, in Replicate's
  `{"detail": "Request was throttled. …"}` shape.

Verified: the SDK's routes, headers, timeouts and error fields; flux-schnell/flux-dev inputs and sizes (cog-flux
source); flux-1.1-pro(-ultra), sd-3.5-large, ideogram-v3, recraft-v3 input schemas (replicate.com version pages);
the 401, 402, 422 bodies and NSFW / E005 error strings (observed responses in public code).
Unverified (u): latencies and prices other than flux-schnell's and flux-1.1-pro's; sizes of flux-1.1-pro by
aspect (cog-flux's table), ultra's 5:4 and 4:5, sd-3.5 and ideogram by aspect, every img2img output size; the
404 / 409 / 400 bodies; cancel of a finished prediction being 409 (the summary's word); the Cancel-After syntax
beyond `30s` / `1m`; the delivery link's answer once gone; E005 for refused inputs of open-weight models too; the
`Prefer: wait` status quirk in today's production; the webhook's `msg_` id shape and that an aborted prediction is
posted. Replicate's webhook retries are not simulated, no stream URL is given, and `POST /v1/files` is not
simulated (send image inputs as data URIs).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from simulator.core import Fault, Simulator, outbound_tls
from simulator.jobs import JOB_FAULTS, Phase, SimJob
from simulator.media import MIME, FetchFailed, clip, data_uri, fetch_local, image_size, still
from simulator.outputs import Hosted

VENDOR = "replicate"
PREFIX = "/replicate"
SIMULATOR_KEY = "r8_CutroomSimulatorKey000000000000000000"
TOKEN_PATTERN = re.compile(r"^r8_[A-Za-z0-9]{37}$")
#: Replicate keeps API predictions' inputs and outputs for an hour (the simulator's output_ttl_s caps it).
DATA_LIFETIME_S = 3600.0
MAX_WAIT_S = 60
CREDIT_USD = 100.0
PROBLEM = "application/problem+json"
ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
E005 = "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
INTERRUPTED = "Prediction interrupted; please retry (code: PA)"
FLUX_NSFW = "All generated images contained NSFW content. Try running it again with a different prompt."
SD_NSFW = "NSFW content detected. Try running it again, or try a different prompt."
#: (u) Wan's safety checker, worded as the other open-weight checkers.
WAN_NSFW = "NSFW content detected in the generated video. Try running it again, or try a different prompt."
#: The events a create may ask to be posted (`webhook_events_filter`); only "completed" is posted here.
WEBHOOK_EVENTS = ("start", "output", "logs", "completed")
#: (u) How long a webhook post may take before it is given up.
WEBHOOK_TIMEOUT_S = 5.0
TERMINAL = ("succeeded", "failed", "canceled", "aborted")


@dataclass(frozen=True)
class Field:
    """One input of a model's schema: kind is string, integer, number, boolean, uri or uri_list."""

    kind: str
    default: Any = None
    choices: tuple[Any, ...] = ()
    ge: float | None = None
    le: float | None = None


def _enum(default: str, *choices: str) -> Field:
    return Field("string", default, choices)


def _int(default: int | None = None, ge: float | None = None, le: float | None = None) -> Field:
    return Field("integer", default, ge=ge, le=le)


def _num(default: float, ge: float | None = 0, le: float | None = None) -> Field:
    return Field("number", default, ge=ge, le=le)


STR, BOOL, URI, URIS = Field("string"), Field("boolean", False), Field("uri"), Field("uri_list")
Size = tuple[int, int]

#: cog-flux's ASPECT_RATIOS (verified); megapixels "0.25" halves both sides.
FLUX_SIZES = {
    "1:1": (1024, 1024), "16:9": (1344, 768), "21:9": (1536, 640), "3:2": (1216, 832), "2:3": (832, 1216),
    "4:5": (896, 1088), "5:4": (1088, 896), "3:4": (896, 1152), "4:3": (1152, 896), "9:16": (768, 1344),
    "9:21": (640, 1536),
}  # fmt: skip
#: flux-1.1-pro-ultra's ~4 MP frames (Runware's table for the same BFL model; 5:4 and 4:5 (u)).
ULTRA_SIZES = {
    "21:9": (3136, 1344), "16:9": (2752, 1536), "3:2": (2496, 1664), "4:3": (2368, 1792), "5:4": (2304, 1856),
    "1:1": (2048, 2048), "4:5": (1856, 2304), "3:4": (1792, 2368), "2:3": (1664, 2496), "9:16": (1536, 2752),
    "9:21": (1344, 3136),
}  # fmt: skip
#: (u) Ideogram v3's default resolution per aspect; all are in its `resolution` list.
IDEOGRAM_SIZES = {
    "1:1": (1024, 1024), "16:9": (1312, 736), "9:16": (736, 1312), "4:3": (1152, 864), "3:4": (864, 1152),
    "3:2": (1248, 832), "2:3": (832, 1248), "16:10": (1280, 800), "10:16": (800, 1280), "2:1": (1408, 704),
    "1:2": (704, 1408), "3:1": (1536, 512), "1:3": (512, 1536), "5:4": (1120, 896), "4:5": (896, 1120),
}  # fmt: skip
IDEOGRAM_RESOLUTIONS = (
    "512x1536", "576x1408", "576x1472", "576x1536", "640x1344", "640x1408", "640x1472", "640x1536",
    "704x1152", "704x1216", "704x1280", "704x1344", "704x1408", "704x1472", "736x1312", "768x1088",
    "768x1216", "768x1280", "768x1344", "800x1280", "832x960", "832x1024", "832x1088", "832x1152",
    "832x1216", "832x1248", "864x1152", "896x960", "896x1024", "896x1088", "896x1120", "896x1152", "960x832",
    "960x896", "960x1024", "960x1088", "1024x832", "1024x896", "1024x960", "1024x1024", "1088x768",
    "1088x832", "1088x896", "1088x960", "1120x896", "1152x704", "1152x832", "1152x864", "1152x896",
    "1216x704", "1216x768", "1216x832", "1248x832", "1280x704", "1280x768", "1280x800", "1312x736",
    "1344x640", "1344x704", "1344x768", "1408x576", "1408x640", "1408x704", "1472x576", "1472x640",
    "1472x704", "1536x512", "1536x576", "1536x640",
)  # fmt: skip
#: Recraft V3's size per aspect (recraft.ai API appendix).
RECRAFT_SIZES = {
    "1:1": "1024x1024", "2:1": "2048x1024", "1:2": "1024x2048", "3:2": "1536x1024", "2:3": "1024x1536",
    "4:3": "1365x1024", "3:4": "1024x1365", "5:4": "1280x1024", "4:5": "1024x1280", "7:5": "1434x1024",
    "5:7": "1024x1434", "5:3": "1707x1024", "3:5": "1024x1707", "16:9": "1820x1024", "9:16": "1024x1820",
}  # fmt: skip
RECRAFT_STYLES = ("any", "realistic_image", "digital_illustration") + tuple(
    f"digital_illustration/{s}" for s in ("pixel_art", "hand_drawn", "grain", "infantile_sketch", "2d_art_poster",
                                          "handmade_3d", "hand_drawn_outline", "engraving_color", "2d_art_poster_2")
) + tuple(
    f"realistic_image/{s}" for s in ("b_and_w", "hard_flash", "hdr", "natural_light", "studio_portrait",
                                     "enterprise", "motion_blur")
)  # fmt: skip
FORMATS = ("webp", "jpg", "png")


def _wxh(text: str) -> Size:
    w, h = text.split("x")
    return int(w), int(h)


def _fit(source: Size, cap: int, step: int) -> Size:
    """cog-flux's img2img frame: the input scaled to fit `cap`, each side rounded to `step`."""
    scale = min(cap / source[0], cap / source[1], 1)
    return tuple(round(int(side * scale) / step) * step for side in source)  # type: ignore[return-value]


def _megapixel(source: Size, step: int = 64) -> Size:
    """(u) An input image's aspect at about one megapixel."""
    scale = math.sqrt(1024 * 1024 / (source[0] * source[1]))
    return tuple(max(step, round(side * scale / step) * step) for side in source)  # type: ignore[return-value]


def _flux_size(inp: dict[str, Any], source: Size | None) -> Size:
    if source is not None:
        return _fit(source, 1440, 16)
    w, h = FLUX_SIZES[inp.get("aspect_ratio", "1:1")]
    return (w // 2, h // 2) if inp.get("megapixels") == "0.25" else (w, h)


def _pro_size(inp: dict[str, Any], source: Size | None) -> Size:
    if inp.get("aspect_ratio") == "custom":  # width and height are rounded to a multiple of 32
        return tuple(round(inp.get(k, 1024) / 32) * 32 for k in ("width", "height"))  # type: ignore[return-value]
    return FLUX_SIZES[inp.get("aspect_ratio", "1:1")]


def _sd_size(inp: dict[str, Any], source: Size | None) -> Size:
    return _megapixel(source) if source else FLUX_SIZES[inp.get("aspect_ratio", "1:1")]


def _ideogram_size(inp: dict[str, Any], source: Size | None) -> Size:
    if source is not None:
        return source
    if inp.get("resolution", "None") != "None":
        return _wxh(inp["resolution"])
    return IDEOGRAM_SIZES[inp.get("aspect_ratio", "1:1")]


def _recraft_size(inp: dict[str, Any], source: Size | None) -> Size:
    aspect = inp.get("aspect_ratio", "Not set")
    return _wxh(RECRAFT_SIZES[aspect] if aspect != "Not set" else inp.get("size", "1024x1024"))


def _sdxl_size(inp: dict[str, Any], source: Size | None) -> Size:
    return source or (inp.get("width", 1024), inp.get("height", 1024))


#: Seedance 1 Lite's frames by resolution and ratio (BytePlus' table for Seedance 1.0; (u) on Replicate).
SEEDANCE_FRAMES = {
    "480p": {"16:9": (864, 480), "4:3": (736, 544), "1:1": (640, 640), "3:4": (544, 736), "9:16": (480, 864),
             "21:9": (960, 416), "9:21": (416, 960)},
    "720p": {"16:9": (1248, 704), "4:3": (1120, 832), "1:1": (960, 960), "3:4": (832, 1120), "9:16": (704, 1248),
             "21:9": (1504, 640), "9:21": (640, 1504)},
    "1080p": {"16:9": (1920, 1088), "4:3": (1664, 1248), "1:1": (1440, 1440), "3:4": (1248, 1664),
              "9:16": (1088, 1920), "21:9": (2176, 928), "9:21": (928, 2176)},
}  # fmt: skip
#: (u) Kling 2.1's frames by mode; Veo 3 Fast's and Wan 2.2's by resolution; MiniMax Video-01's one frame.
KLING_FRAMES = {
    "standard": {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (720, 720)},
    "pro": {"16:9": (1920, 1080), "9:16": (1080, 1920), "1:1": (1080, 1080)},
}
VEO_FRAMES = {
    "720p": {"16:9": (1280, 720), "9:16": (720, 1280)},
    "1080p": {"16:9": (1920, 1080), "9:16": (1080, 1920)},
}
WAN_FRAMES = {
    "480p": {"16:9": (832, 480), "9:16": (480, 832), "1:1": (640, 640)},
    "720p": {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)},
}
MINIMAX_FRAMES = {"720p": {"16:9": (1280, 720)}}
#: (u) Replicate's wording when a partner video model's own filter blocks the clip it made.
VIDEO_NSFW = "NSFW content detected in the generated video. Try running it again with a different prompt."
#: (u) Kling 2.1's failure when an end image comes in standard mode (its schema allows the pair).
KLING_END_IN_STANDARD = "end_image is only supported in pro mode"


@dataclass(frozen=True)
class Video:
    """What a video model makes of its input: the frame of its resolution (or mode) nearest its start image's
    ratio when it follows the image, else its aspect_ratio; the length and rate; the clip's price."""

    start: str
    frames: dict[str, dict[str, Size]]
    #: The input choosing the frame table, and its default.
    tier: tuple[str, str]
    seconds: Callable[[dict[str, Any]], float]
    fps: Callable[[dict[str, Any]], int]
    usd: Callable[[dict[str, Any]], float]
    #: The clip takes its start image's ratio (aspect_ratio, if any, is then ignored).
    follows_image: bool = True
    #: The model's own failure for an input combination its schema lets through.
    problem: Callable[[dict[str, Any]], str | None] = lambda inp: None

    def frame(self, inp: dict[str, Any], source: Size | None) -> Size:
        table = self.frames[str(inp.get(self.tier[0], self.tier[1]))]
        if self.follows_image and source is not None:
            ratio = source[0] / source[1]
            return min(table.values(), key=lambda size: abs(math.log(size[0] / size[1] / ratio)))
        return table.get(str(inp.get("aspect_ratio")), next(iter(table.values())))


@dataclass(frozen=True)
class Model:
    name: str
    version: str
    fields: dict[str, Field]
    size: Callable[[dict[str, Any], Size | None], Size]
    default_format: str = "webp"
    official: bool = True
    #: The output is one URL string rather than a list of them.
    single: bool = False
    required: tuple[str, ...] = ("prompt",)
    latency_s: float = 5.0
    #: Share of the latency spent `starting` (a community model's cold boot is most of it).
    starting_share: float = 0.1
    usd_per_image: float = 0.0
    usd_per_second: float = 0.0
    #: The open-weight safety checker's message when it blocks every image; None for partner models (E005).
    checker: str | None = None
    #: The input that sets the denoising steps and its default, for the progress bar in the logs.
    steps: tuple[str, int] | None = None
    description: str = ""
    #: What a video model makes of its input (None: an image model).
    video: Video | None = None

    def value(self, inp: dict[str, Any], name: str) -> Any:
        return inp.get(name, self.fields[name].default)

    def output_format(self, inp: dict[str, Any]) -> str:
        return self.value(inp, "output_format") if "output_format" in self.fields else self.default_format

    def count(self, inp: dict[str, Any]) -> int:
        return int(self.value(inp, "num_outputs")) if "num_outputs" in self.fields else 1


_FLUX_COMMON = {
    "prompt": STR, "aspect_ratio": _enum("1:1", *FLUX_SIZES), "num_outputs": _int(1, 1, 4), "seed": _int(),
    "output_format": _enum("webp", *FORMATS), "output_quality": _int(80, 0, 100),
    "disable_safety_checker": BOOL, "go_fast": Field("boolean", True), "megapixels": _enum("1", "1", "0.25"),
}  # fmt: skip
_PRO_ASPECTS = ("custom", "1:1", "16:9", "3:2", "2:3", "4:5", "5:4", "9:16", "3:4", "4:3")
MODELS = (
    Model(
        "black-forest-labs/flux-schnell", "c846a69991daf4c0e5d016514849d14ee5b2e6846ce6b9d6f21369e564cfe51e",
        {**_FLUX_COMMON, "num_inference_steps": _int(4, 1, 4)}, _flux_size, latency_s=1.5, usd_per_image=0.003,
        checker=FLUX_NSFW, steps=("num_inference_steps", 4), description="FLUX.1 [schnell]",
    ),
    Model(
        "black-forest-labs/flux-dev", "6e4a938f85952bdabcc15aa329178c4d681c52bf25a0342403287dc26944661d",
        {**_FLUX_COMMON, "image": URI, "prompt_strength": _num(0.8, 0, 1), "num_inference_steps": _int(28, 1, 50),
         "guidance": _num(3, 0, 10)},
        _flux_size, latency_s=4.0, usd_per_image=0.025, checker=FLUX_NSFW, steps=("num_inference_steps", 28),
        description="FLUX.1 [dev]",
    ),
    Model(
        "black-forest-labs/flux-1.1-pro", "96ccd0e758a1796926584ded2246369cdf8eb3d7c34475cf9c442be5e097d926",
        {"prompt": STR, "image_prompt": URI, "aspect_ratio": _enum("1:1", *_PRO_ASPECTS),
         "width": _int(None, 256, 1440), "height": _int(None, 256, 1440), "safety_tolerance": _int(2, 1, 6),
         "seed": _int(), "prompt_upsampling": BOOL, "output_format": _enum("webp", *FORMATS),
         "output_quality": _int(80, 0, 100)},
        _pro_size, single=True, latency_s=4.0, usd_per_image=0.04, description="FLUX1.1 [pro]",
    ),
    Model(
        "black-forest-labs/flux-1.1-pro-ultra", "dc614139a59d6ea30f020e0eedbe26c368f0bedea9d687285732af9f60cf4fe6",
        {"prompt": STR, "image_prompt": URI, "image_prompt_strength": _num(0.1, 0, 1),
         "aspect_ratio": _enum("1:1", *ULTRA_SIZES), "safety_tolerance": _int(2, 1, 6), "seed": _int(),
         "raw": BOOL, "output_format": _enum("jpg", "jpg", "png")},
        lambda inp, source: ULTRA_SIZES[inp.get("aspect_ratio", "1:1")], default_format="jpg", single=True,
        latency_s=10.0, usd_per_image=0.06, description="FLUX1.1 [pro] ultra",
    ),
    Model(
        "stability-ai/stable-diffusion-3.5-large", "e6c4657fe1b3f078fb26d68a1413bc8013e2b085504dd84a33e26e16fb95a593",
        {"prompt": STR, "aspect_ratio": _enum("1:1", *FLUX_SIZES), "cfg": _num(3.5, 0, 20), "image": URI,
         "prompt_strength": _num(0.85, 0, 1), "steps": _int(35, 1, 50), "seed": _int(),
         "output_format": _enum("webp", *FORMATS), "output_quality": _int(90, 0, 100)},
        _sd_size, latency_s=8.0, usd_per_image=0.065, checker=SD_NSFW, steps=("steps", 35),
        description="Stable Diffusion 3.5 Large",
    ),
    Model(
        "ideogram-ai/ideogram-v3-turbo", "d9b3748f95c0fe3e71f010f8cc5d80e8f5252acd0e74b1c294ee889eea52a47b",
        {"prompt": STR, "aspect_ratio": _enum("1:1", *IDEOGRAM_SIZES),
         "resolution": _enum("None", "None", *IDEOGRAM_RESOLUTIONS), "magic_prompt_option": _enum("Auto", "Auto",
         "On", "Off"), "image": URI, "mask": URI, "style_type": _enum("None", "None", "Auto", "General",
         "Realistic", "Design"), "style_reference_images": URIS, "style_preset": STR, "seed": _int(None, None,
         2147483647)},
        _ideogram_size, default_format="png", single=True, latency_s=6.0, usd_per_image=0.03,
        description="Ideogram 3.0 Turbo",
    ),
    Model(
        "recraft-ai/recraft-v3", "9507e61ddace8b3a238371b17a61be203747c5081ea6070fecd3c40d27318922",
        {"prompt": STR, "size": _enum("1024x1024", *sorted(set(RECRAFT_SIZES.values()))),
         "aspect_ratio": _enum("Not set", "Not set", *RECRAFT_SIZES), "style": _enum("any", *RECRAFT_STYLES)},
        _recraft_size, single=True, latency_s=10.0, usd_per_image=0.04, description="Recraft V3",
    ),
    # A community model: run by pinned version only, billed by GPU time, with a cold boot.
    Model(
        "stability-ai/sdxl", "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b",
        {"prompt": Field("string", "An astronaut riding a rainbow unicorn"), "negative_prompt": STR, "image": URI,
         "mask": URI, "width": _int(1024, 64, 2048), "height": _int(1024, 64, 2048), "num_outputs": _int(1, 1, 4),
         "scheduler": _enum("K_EULER", "DDIM", "DPMSolverMultistep", "HeunDiscrete", "KarrasDPM",
                            "K_EULER_ANCESTRAL", "K_EULER", "PNDM"),
         "num_inference_steps": _int(50, 1, 500), "guidance_scale": _num(7.5, 1, 50),
         "prompt_strength": _num(0.8, 0, 1), "seed": _int(), "refine": _enum("no_refiner", "no_refiner",
         "expert_ensemble_refiner", "base_image_refiner"), "high_noise_frac": _num(0.8, 0, 1),
         "apply_watermark": Field("boolean", True), "lora_scale": _num(0.6, 0, 1), "disable_safety_checker": BOOL},
        _sdxl_size, default_format="png", official=False, required=(), latency_s=20.0, starting_share=0.5,
        usd_per_second=0.0014, checker=SD_NSFW, steps=("num_inference_steps", 50), description="SDXL 1.0",
    ),
    # Video models: official, run by name; their version ids are placeholders of the right shape (u).
    *(
        Model(name, version, fields, video.frame, default_format="mp4", single=True, required=required,
              latency_s=latency, starting_share=0.05, checker=checker, description=description, video=video)
        for name, version, fields, video, required, latency, checker, description in (
            (
                "bytedance/seedance-1-lite", "b6519549e375404f45af5ef2e4b01f651d4014f3b57d3270b430e0523bad9835",
                {"prompt": STR, "image": URI, "last_frame_image": URI, "duration": _int(5, 2, 12),
                 "resolution": _enum("720p", *SEEDANCE_FRAMES), "aspect_ratio": _enum("16:9", *SEEDANCE_FRAMES["480p"]),
                 "fps": Field("integer", 24, (24,)), "camera_fixed": BOOL, "seed": _int(), "reference_images": URIS},
                Video("image", SEEDANCE_FRAMES, ("resolution", "720p"), lambda inp: inp.get("duration", 5),
                      lambda inp: 24, lambda inp: inp.get("duration", 5) * {"480p": 0.018, "720p": 0.036,
                      "1080p": 0.072}[inp.get("resolution", "720p")]),
                ("prompt",), 60.0, VIDEO_NSFW, "Seedance 1 Lite",
            ),
            (
                "kwaivgi/kling-v2.1", "daad218feb714b03e2a1ac445986aebb9d05243cd00da2af17be2e4049f48f69",
                {"prompt": STR, "start_image": URI, "end_image": URI, "mode": _enum("standard", *KLING_FRAMES),
                 "duration": Field("integer", 5, (5, 10)), "negative_prompt": STR},
                Video("start_image", KLING_FRAMES, ("mode", "standard"), lambda inp: inp.get("duration", 5),
                      lambda inp: 24, lambda inp: inp.get("duration", 5) * (0.09 if inp.get("mode") == "pro" else 0.05),
                      problem=lambda inp: KLING_END_IN_STANDARD if "end_image" in inp and inp.get("mode") != "pro"
                      else None),
                ("prompt", "start_image"), 150.0, VIDEO_NSFW, "Kling 2.1",
            ),
            (
                "minimax/video-01", "5aa835260ff7f40f4069c41185f72036accf99e29957bb4a3b3a911f3b6c1912",
                {"prompt": STR, "first_frame_image": URI, "subject_reference": URI,
                 "prompt_optimizer": Field("boolean", True)},
                Video("first_frame_image", MINIMAX_FRAMES, ("-", "720p"), lambda inp: 6.0, lambda inp: 25,
                      lambda inp: 0.5, follows_image=False),
                ("prompt",), 180.0, VIDEO_NSFW, "MiniMax Video-01",
            ),
            (
                "google/veo-3-fast", "8c5a9b1d1b8e3f7c0c2f4b5e6d7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a",
                {"prompt": STR, "image": URI, "aspect_ratio": _enum("16:9", "16:9", "9:16"),
                 "duration": Field("integer", 8, (4, 6, 8)), "resolution": _enum("720p", *VEO_FRAMES),
                 "generate_audio": Field("boolean", True), "negative_prompt": STR, "seed": _int()},
                Video("image", VEO_FRAMES, ("resolution", "720p"), lambda inp: inp.get("duration", 8),
                      lambda inp: 24, lambda inp: inp.get("duration", 8) * (0.15 if inp.get("generate_audio", True)
                      else 0.1), follows_image=False),
                ("prompt",), 60.0, VIDEO_NSFW, "Veo 3 Fast",
            ),
            (
                "wan-video/wan-2.2-i2v-fast", "6b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809",
                {"prompt": STR, "image": URI, "num_frames": _int(81, 81, 121), "frames_per_second": _int(16, 5, 30),
                 "resolution": _enum("480p", *WAN_FRAMES), "go_fast": Field("boolean", True),
                 "sample_shift": _num(12, 1, 20), "seed": _int(), "disable_safety_checker": BOOL},
                Video("image", WAN_FRAMES, ("resolution", "480p"),
                      lambda inp: inp.get("num_frames", 81) / inp.get("frames_per_second", 16),
                      lambda inp: inp.get("frames_per_second", 16),
                      lambda inp: 0.11 if inp.get("resolution") == "720p" else 0.05),
                ("prompt", "image"), 40.0, WAN_NSFW, "Wan 2.2 i2v fast",
            ),
        )
    ),
)  # fmt: skip
BY_NAME = {m.name: m for m in MODELS}
BY_VERSION = {m.version: m for m in MODELS}


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """Replicate's error bodies: its throttle answer `{"detail": …}` for 429, problem+json for the rest."""
    if status == 429:
        wait = max(1, math.ceil(retry_after or 0))
        # The body rounds to whole seconds as Replicate's does; Retry-After carries the frame's configured
        # value as given, as every vendor's injected 429 does (the contract checks it). The SDK's retry reads
        # only digits, so it backs off by itself on a fractional value.
        return JSONResponse(
            {"detail": f"Request was throttled. Your rate limit resets in ~{wait}s."},
            status_code=429,
            headers={"Retry-After": f"{retry_after if retry_after is not None else wait:g}"},
        )
    return _problem(status, message, message)


def _problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"title": title, "detail": detail, "status": status, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _invalid(issues: list[dict[str, str]]) -> Response:
    detail = "".join(f"- {i['field']}: {i['description']}\n" if i["field"] else f"- {i['description']}\n"
                     for i in issues)  # fmt: skip
    return _problem(422, "Input validation failed", detail, invalid_fields=issues)


def _issue(kind: str, where: str, description: str) -> dict[str, str]:
    return {"type": kind, "field": where, "description": description}


def _not_found() -> Response:
    return _problem(404, "Not found", "Not found.")


def _delivery_gone() -> Response:
    return Response(b"Not Found", 404, media_type="text/plain")


def _unauthenticated(request: Request) -> Response | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme in ("Bearer", "Token") and TOKEN_PATTERN.match(token.strip()):
        return None
    return _problem(401, "Unauthenticated", "You did not pass a valid authentication token")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "string")


def _is_uri(value: Any) -> bool:
    """A URI with a scheme; a data URI must also decode (Replicate cannot turn it into a file otherwise)."""
    if not isinstance(value, str) or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", value):
        return False
    return not value.startswith("data:") or data_uri(value) is not None


def _check(name: str, spec: Field, value: Any) -> list[dict[str, str]]:
    where, given = f"input.{name}", _json_type(value)
    expected = {"uri": "string", "uri_list": "array"}.get(spec.kind, spec.kind)
    fits = given == expected or (expected == "number" and given == "integer")
    if not fits:
        return [_issue("invalid_type", where, f"Invalid type. Expected: {expected}, given: {given}")]
    if spec.kind == "uri" and not _is_uri(value):
        return [_issue("format", where, "Does not match format 'uri'")]
    if spec.kind == "uri_list":
        return [_issue("format", f"{where}.{i}", "Does not match format 'uri'")
                for i, item in enumerate(value) if not _is_uri(item)]  # fmt: skip
    if spec.choices and value not in spec.choices:
        allowed = ", ".join(json.dumps(c) for c in spec.choices)
        return [_issue("enum", where, f"{name} must be one of the following: {allowed}")]
    if spec.ge is not None and value < spec.ge:
        return [_issue("number_gte", where, f"Must be greater than or equal to {spec.ge:g}")]
    if spec.le is not None and value > spec.le:
        return [_issue("number_lte", where, f"Must be less than or equal to {spec.le:g}")]
    return []


def validate_input(model: Model, inp: dict[str, Any]) -> list[dict[str, str]]:
    issues = [
        _issue("required", "input", f"{name} is required") for name in model.required if name not in inp
    ]
    for name, value in inp.items():
        if name in model.fields:  # Replicate ignores inputs the model does not take
            issues.extend(_check(name, model.fields[name], value))
    return issues


def _body_issues(body: dict[str, Any], allowed: tuple[str, ...]) -> list[dict[str, str]]:
    issues = [_issue("required", "", f"{name} is required") for name in ("version", "input")
              if name in allowed and name not in body]  # fmt: skip
    issues += [_issue("additional_property_not_allowed", "", f"Additional property {key} is not allowed")
               for key in body if key not in allowed]  # fmt: skip
    if "input" in body and not isinstance(body["input"], dict):
        issues.append(_issue("invalid_type", "input", f"Invalid type. Expected: object, given: "
                                                      f"{_json_type(body['input'])}"))  # fmt: skip
    events = body.get("webhook_events_filter", [])
    for i, event in enumerate(events if isinstance(events, list) else [events]):
        if event not in WEBHOOK_EVENTS:
            allowed_events = ", ".join(json.dumps(e) for e in WEBHOOK_EVENTS)
            issues.append(
                _issue(
                    "enum",
                    f"webhook_events_filter.{i}",
                    f"webhook_events_filter.{i} must be one of the following: {allowed_events}",
                )
            )
    return issues


def resolve_version(ref: Any) -> tuple[Model, bool] | None:
    """The model a `version` names, and whether the prediction shows its version (False: "hidden")."""
    if not isinstance(ref, str):
        return None
    name, _, version = ref.partition(":")
    if re.fullmatch(r"[0-9a-f]{64}", ref):
        model = BY_VERSION.get(ref)
        return (model, True) if model else None
    model = BY_NAME.get(name)
    if model is None or (version and version != model.version) or (not version and not model.official):
        return None
    return model, bool(version)


def _prefer_wait(request: Request) -> float | None:
    """Seconds a `Prefer: wait` / `Prefer: wait=n` asks the create to be held, clamped to 1..60."""
    match = re.fullmatch(r"\s*wait(?:\s*=\s*(\d+))?\s*", request.headers.get("prefer", ""))
    if match is None:
        return None
    return float(min(max(int(match.group(1) or MAX_WAIT_S), 1), MAX_WAIT_S))


def _duration(text: str) -> float | None:
    """A `Cancel-After` value: `90`, `30s`, `1m`, `1h30m`, `1m30.5s` → seconds; None when unreadable."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", text)
    if not text or match is None:
        return None
    hours, minutes, seconds = (float(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class Prediction:
    id: str
    model: Model
    input: dict[str, Any]
    job: SimJob
    created_wall: float
    show_version: bool
    seed: int
    files: list[str]
    #: Why it fails once it ends (None: it succeeds), and which requested images survive the safety checker.
    error: str | None
    kept: list[int]
    deadline: float | None = None
    notes: list[str] = field(default_factory=list)
    #: Set by a cancel, so a webhook waiting for the end posts it at once.
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def started(self) -> float:
        return self.job.created + self.job.queued_share * self.job.latency

    def ended_at(self) -> float:
        """When it ended or will end: a user cancel, the deadline, or the job's own end."""
        job = self.job
        if job.cancelled_at is not None and job.cancelled_at < job.ends:
            return job.cancelled_at
        return min(job.ends, self.deadline if self.deadline is not None else job.ends)

    def status(self, now: float) -> str:
        job = self.job
        if job.cancelled_at is not None and job.cancelled_at < job.ends:
            return "canceled"
        if self.deadline is not None and self.deadline < job.ends and now >= self.deadline:
            return "aborted" if self.deadline < self.started else "canceled"
        phase = job.phase(now)
        if phase is Phase.queued:
            return "starting"
        if phase is Phase.running:
            return "processing"
        return "failed" if self.error else "succeeded"

    def logs(self, status: str, now: float) -> str:
        if status in ("starting", "aborted"):
            return ""
        lines = [f"Using seed: {self.seed}"]
        made = "video" if self.model.video else "image"
        if self.model.steps is None:
            lines[:0] = ["Running prediction... "]
            lines.append(f"Generating {made}...")
        else:
            name, default = self.model.steps
            total = int(self.input.get(name, default))
            done = (
                total if status == "succeeded" else int(self.job.progress(min(now, self.ended_at())) * total)
            )
            percent = 100 * done // total
            bar = ("█" * (percent // 10)).ljust(10)
            lines.append(f"{percent:3d}%|{bar}| {done}/{total} [00:00<00:00, 9.87it/s]")
        if status == "succeeded":
            lines += self.notes
            if self.model.steps is None:
                lines.append(f"Generated {made} in {self.job.latency * (1 - self.job.queued_share):.1f}sec")
            else:
                lines.append(f"Total safe images: {len(self.kept)} out of {self.model.count(self.input)}")
        return "\n".join(lines) + "\n"


def _new_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(26))


def completed_hook(body: dict[str, Any]) -> str | None:
    """Where a create asks its end to be posted: its `webhook`, unless its `webhook_events_filter` leaves out
    "completed"."""
    hook, events = body.get("webhook"), body.get("webhook_events_filter")
    if not isinstance(hook, str) or (events is not None and "completed" not in events):
        return None
    return hook


def signed(raw: bytes, key: bytes) -> dict[str, str]:
    """Standard-Webhooks headers for a post of `raw`: an id, the time, and the HMAC-SHA256 of both and the body
    under the account's secret."""
    message_id, timestamp = f"msg_{secrets.token_hex(12)}", str(int(time.time()))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
    }


def router(sim: Simulator) -> APIRouter:
    predictions: dict[str, Prediction] = {}
    billing = {"balance_usd": CREDIT_USD}
    sim.on_reset(lambda: billing.update(balance_usd=CREDIT_USD))  # a reset starts the account afresh
    hosted = Hosted(sim, PREFIX, gone=_delivery_gone)
    api = APIRouter()
    hosted.route(api)
    signing_key = secrets.token_bytes(32)  # the account's default webhook secret, whsec_<base64>
    webhooks: set[asyncio.Task[None]] = set()

    def lifetime() -> float:
        return min(DATA_LIFETIME_S, sim.config.output_ttl_s)

    def view(request: Request, p: Prediction, waited: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        status = p.status(now)
        base = f"{str(request.base_url).rstrip('/')}{PREFIX}"
        end = p.ended_at()
        started = min(now, end) >= p.started

        def wall(mono: float) -> str:
            return _iso(p.created_wall + (mono - p.job.created))

        removed = status == "succeeded" and now - end > lifetime()
        output: Any = None
        if status == "succeeded" and not removed:
            urls = [hosted.url(request, name) for name in p.files]
            output = urls[0] if p.model.single else urls
        body: dict[str, Any] = {
            "id": p.id,
            "model": p.model.name,
            "version": p.model.version if p.show_version else "hidden",
            "input": p.input,
            "logs": p.logs(status, now),
            "output": output,
            "data_removed": removed,
            "error": p.error if status == "failed" else None,
            "status": status,
            "source": "api",
            "created_at": _iso(p.created_wall),
            "started_at": wall(p.started) if started else None,
            "completed_at": wall(end) if status in TERMINAL else None,
            "urls": {
                "cancel": f"{base}/v1/predictions/{p.id}/cancel",
                "get": f"{base}/v1/predictions/{p.id}",
                "web": f"https://replicate.com/p/{p.id}",
            },
            "metrics": {},
        }
        if status in TERMINAL and status != "aborted":
            body["metrics"] = {"predict_time": round(max(0.0, end - p.started), 6),
                               "total_time": round(end - p.job.created, 6)}  # fmt: skip
            if status == "succeeded" and p.model.usd_per_image:
                body["metrics"]["image_count"] = len(p.kept)
        if waited and status == "succeeded":
            # The SDK's run() documents the blocking answer: done in time reads `processing` with the output.
            body.update(status="processing", completed_at=None, metrics={})
        elif waited and status not in TERMINAL:
            body["status"] = "starting"  # …and not done in time reads `starting`, whatever the real state
        return body

    async def notify(request: Request, p: Prediction, hook: str) -> None:
        """POST the final Prediction once to the create's webhook when it ends (its run, its deadline or a
        cancel), signed; an unreachable receiver changes nothing."""
        while p.status(now := time.monotonic()) not in TERMINAL:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(p.cancelled.wait(), p.ended_at() - now)
        raw = json.dumps(view(request, p)).encode()
        try:
            async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S, verify=outbound_tls()) as http:
                await http.post(hook, content=raw, headers=signed(raw, signing_key))
        except httpx.HTTPError:
            pass

    async def create(
        request: Request, model: Model, inp: dict[str, Any], show_version: bool, hook: str | None
    ) -> Response:
        if issues := validate_input(model, inp):
            return _invalid(issues)
        deadline_s = None
        if "cancel-after" in request.headers:
            deadline_s = _duration(request.headers["cancel-after"])
            if not deadline_s:
                return _problem(422, "Invalid Cancel-After header",
                                "Cancel-After must be a positive duration such as 30s, 5m or 1h.")  # fmt: skip
        count = model.count(inp)
        cost = model.usd_per_image * count + model.usd_per_second * model.latency_s
        if model.video is not None:
            cost += model.video.usd(inp)
        if billing["balance_usd"] < cost:
            return _problem(402, "Insufficient credit",
                            "You have insufficient credit to run this model. Go to "
                            "https://replicate.com/account/billing#billing to purchase credit. Once you purchase "
                            "credit, please wait a few minutes before trying again.")  # fmt: skip
        billing["balance_usd"] -= cost
        # A data URI the model cannot open, or a refused input (E005), fails before anything is generated.
        source, error = _read_images(model, inp)
        start = None
        if model.video is not None:
            start = await _start_image(inp.get(model.video.start))
            source = image_size(start) if start else None
            error = error or model.video.problem(inp)
        early = error is not None
        fault = sim.draw(*JOB_FAULTS)
        kept, notes = list(range(count)), []
        if error is None and fault is Fault.failed:
            error = INTERRUPTED
        elif error is None and fault is Fault.moderation:
            error, early = E005, True
        elif error is None and fault is Fault.moderation_output:
            if model.checker is None:
                error = E005
            elif inp.get("disable_safety_checker") is not True:  # off, the checker lets everything through
                kept, notes = kept[1:], ["NSFW content detected in image 0"]
                error = None if kept else model.checker
        latency = sim.latency(model.latency_s) * (0.2 if early else 1.0)
        job = SimJob(id=_new_id(), created=time.monotonic(), latency=latency, fault=fault, request=inp,
                     queued_share=model.starting_share)  # fmt: skip
        created_wall = time.time()
        sim.record_job(VENDOR, job.id, created_wall, created_wall + latency)
        width, height = model.size(inp, source)
        fmt = model.output_format(inp)
        token = secrets.token_urlsafe(30).replace("-", "x").replace("_", "y")
        files = [f"{token}-out-{i}.{fmt}" for i in kept]
        prompt = str(model.value(inp, "prompt") or "")
        make: Callable[[], bytes] = partial(still, prompt, width, height, fmt)
        shape: tuple[Any, ...] = (VENDOR, model.name, width, height, fmt)
        if model.video is not None:
            seconds, fps = float(model.video.seconds(inp)), int(model.video.fps(inp))
            make = partial(clip, prompt, width, height, seconds, fps, start=start)
            shape += (seconds, fps)
        for name in files:
            hosted.put(name, make, MIME[fmt], shape=shape, ready_at=job.ends, fault=fault)
        p = Prediction(
            id=job.id, model=model, input=inp, job=job, created_wall=created_wall, show_version=show_version,
            seed=int(inp.get("seed") or secrets.randbelow(65536)), files=files, error=error, kept=kept,
            deadline=job.created + deadline_s if deadline_s else None, notes=notes,
        )  # fmt: skip
        predictions[p.id] = p
        if hook is not None:
            notifier = asyncio.create_task(notify(request, p, hook))
            webhooks.add(notifier)  # kept until done: the loop holds tasks weakly
            notifier.add_done_callback(webhooks.discard)
        wait = _prefer_wait(request)
        if wait is not None:
            until = time.monotonic() + wait
            while (now := time.monotonic()) < until and p.status(now) not in TERMINAL:
                await asyncio.sleep(min(0.05, until - now))
        return JSONResponse(view(request, p, waited=wait is not None), status_code=201)

    async def read_body(request: Request) -> dict[str, Any] | Response:
        try:
            body = await request.json()
        except ValueError:
            return _problem(400, "Invalid JSON", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _invalid([_issue("invalid_type", "", f"Invalid type. Expected: object, given: "
                                                        f"{_json_type(body)}")])  # fmt: skip
        return body

    @api.post("/v1/models/{owner}/{name}/predictions")
    async def create_for_model(owner: str, name: str, request: Request) -> Response:
        if (refused := _unauthenticated(request)) is not None:
            return refused
        model = BY_NAME.get(f"{owner}/{name}")
        if model is None or not model.official:
            return _not_found()
        body = await read_body(request)
        if isinstance(body, Response):
            return body
        allowed = ("input", "webhook", "webhook_completed", "webhook_events_filter", "stream")
        if issues := _body_issues(body, allowed):
            return _invalid(issues)
        return await create(request, model, body["input"], show_version=False, hook=completed_hook(body))

    @api.post("/v1/predictions")
    async def create_for_version(request: Request) -> Response:
        if (refused := _unauthenticated(request)) is not None:
            return refused
        body = await read_body(request)
        if isinstance(body, Response):
            return body
        allowed = ("version", "input", "webhook", "webhook_completed", "webhook_events_filter", "stream")
        if issues := _body_issues(body, allowed):
            return _invalid(issues)
        resolved = resolve_version(body["version"])
        if resolved is None:
            return _problem(422, "Invalid version or not permitted",
                            "The specified version does not exist (or perhaps you don't have permission to use "
                            "it?)")  # fmt: skip
        return await create(
            request, resolved[0], body["input"], show_version=resolved[1], hook=completed_hook(body)
        )

    @api.get("/v1/predictions")
    async def list_predictions(request: Request) -> Response:
        if (refused := _unauthenticated(request)) is not None:
            return refused
        newest = sorted(predictions.values(), key=lambda p: p.job.created, reverse=True)
        return JSONResponse({"next": None, "previous": None, "results": [view(request, p) for p in newest]})

    @api.get("/v1/predictions/{prediction_id}")
    async def get_prediction(prediction_id: str, request: Request) -> Response:
        if (refused := _unauthenticated(request)) is not None:
            return refused
        p = predictions.get(prediction_id)
        return _not_found() if p is None else JSONResponse(view(request, p))

    @api.post("/v1/predictions/{prediction_id}/cancel")
    async def cancel_prediction(prediction_id: str, request: Request) -> Response:
        if (refused := _unauthenticated(request)) is not None:
            return refused
        p = predictions.get(prediction_id)
        if p is None:
            return _not_found()
        now = time.monotonic()
        if p.status(now) in TERMINAL:
            return _problem(409, "Conflict", "The prediction has already completed and cannot be canceled.")
        p.job.cancelled_at = now
        p.cancelled.set()
        return JSONResponse(view(request, p))

    @api.get("/v1/models/{owner}/{name}")
    async def get_model(owner: str, name: str, request: Request) -> Response:
        if (refused := _unauthenticated(request)) is not None:
            return refused
        model = BY_NAME.get(f"{owner}/{name}")
        return _not_found() if model is None else JSONResponse(_model_json(model))

    @api.get("/v1/models/{owner}/{name}/versions/{version_id}")
    async def get_version(owner: str, name: str, version_id: str, request: Request) -> Response:
        if (refused := _unauthenticated(request)) is not None:
            return refused
        model = BY_NAME.get(f"{owner}/{name}")
        if model is None or model.version != version_id:
            return _not_found()
        return JSONResponse(_version_json(model))

    @api.get("/v1/webhooks/default/secret")
    async def webhook_secret(request: Request) -> Response:
        if (refused := _unauthenticated(request)) is not None:
            return refused
        return JSONResponse({"key": f"whsec_{base64.b64encode(signing_key).decode()}"})

    @api.get("/v1/account")
    async def account(request: Request) -> Response:
        if (refused := _unauthenticated(request)) is not None:
            return refused
        return JSONResponse({"type": "user", "username": "cutroom-sim", "name": "Cutroom Simulator",
                             "github_url": None})  # fmt: skip

    @api.get("/_sim/billing")
    async def get_billing() -> dict[str, float]:
        return billing

    @api.post("/_sim/billing")
    async def set_billing(changes: dict[str, float]) -> dict[str, float]:
        billing["balance_usd"] = float(changes.get("balance_usd", billing["balance_usd"]))
        return billing

    return api


def _read_images(model: Model, inp: dict[str, Any]) -> tuple[Size | None, str | None]:
    """The size of the `image` input when it is a data URI (it frames img2img), and the model's failure when
    a data URI holds no image; links are not fetched (offline)."""
    source = None
    for name, spec in model.fields.items():
        if spec.kind not in ("uri", "uri_list") or name not in inp:
            continue
        for value in inp[name] if spec.kind == "uri_list" else [inp[name]]:
            decoded = data_uri(value)
            if decoded is None:
                continue
            size = image_size(decoded[1])
            if size is None:
                ext = decoded[0].rpartition("/")[2] or "bin"
                return None, f"cannot identify image file '/tmp/tmp{secrets.token_hex(4)}{name}.{ext}'"
            if name == "image" and source is None:
                source = size
    return source, None


async def _start_image(value: Any) -> bytes | None:
    """A video's start image: a data URI's bytes, or a loopback link's (the test S3 endpoint, as Replicate
    fetches a presigned link); other links are not fetched (offline), and an unreadable one is None."""
    if (decoded := data_uri(value)) is not None:
        return decoded[1] if image_size(decoded[1]) else None
    if not isinstance(value, str):
        return None
    try:
        data = await fetch_local(value)
    except FetchFailed:
        return None
    return data if data and image_size(data) else None


def _version_json(model: Model) -> dict[str, Any]:
    kinds = {"uri": {"type": "string", "format": "uri"},
             "uri_list": {"type": "array", "items": {"type": "string", "format": "uri"}}}  # fmt: skip
    properties = {}
    for order, (name, spec) in enumerate(model.fields.items()):
        prop: dict[str, Any] = {"title": name.replace("_", " ").title(), "x-order": order,
                                **kinds.get(spec.kind, {"type": spec.kind})}  # fmt: skip
        extra = {
            "default": spec.default,
            "enum": list(spec.choices) or None,
            "minimum": spec.ge,
            "maximum": spec.le,
        }
        prop.update({k: v for k, v in extra.items() if v is not None})
        properties[name] = prop
    uri = {"type": "string", "format": "uri"}
    output = (
        {**uri, "title": "Output"} if model.single else {"type": "array", "items": uri, "title": "Output"}
    )
    schema = {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {},
        "components": {"schemas": {
            "Input": {"type": "object", "title": "Input", "required": list(model.required), "properties": properties},
            "Output": output,
        }},
    }  # fmt: skip
    return {"id": model.version, "created_at": "2025-01-01T00:00:00.000000Z", "cog_version": "0.16.8",
            "openapi_schema": schema}  # fmt: skip


def _model_json(model: Model) -> dict[str, Any]:
    owner, name = model.name.split("/")
    return {
        "url": f"https://replicate.com/{model.name}", "owner": owner, "name": name,
        "description": model.description, "visibility": "public", "github_url": None, "paper_url": None,
        "license_url": None, "run_count": 0, "cover_image_url": None, "default_example": None,
        "latest_version": _version_json(model),
    }  # fmt: skip
