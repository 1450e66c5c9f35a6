"""Ideogram 3.0's synchronous `POST /v1/ideogram-v3/generate`, as api.ideogram.ai answers it.

There is no official Python SDK; clients send multipart/form-data (the API also takes a JSON object of the
text fields; a urlencoded body is a 415) with the `Api-Key: <key>` header.

Covered: every documented field: `prompt` (required), `seed`, `resolution` or `aspect_ratio` (never both;
the v3 enums), `rendering_speed`, `magic_prompt`, `negative_prompt`, `num_images`, `style_type`,
`style_preset`, `style_codes`, `color_palette` (JSON: a preset name or members), `custom_model_uri`,
`enable_copyright_detection`, and the file parts `style_reference_images`, `character_reference_images`
(one) and its masks; uploads must be JPEG, PNG or WebP within 10 MB a kind, else a 400. The answer is
`{"created", "data": [{"prompt", "resolution", "is_image_safe", "seed", "url", "style_type"}]}`; each url
is an ephemeral signed link (`…/_media/<id>.png?exp=…&sig=…`, like ideogram.ai/api/images/ephemeral/…)
serving a PNG of exactly `resolution`, which expires after output_ttl_s (Fault.expired: at once). Errors
are Connexion's problem+json `{"type": "about:blank", "title", "status", "detail"}`, but for the safety
refusal.

Outcomes (decided at the request, after a latency by rendering speed): Fault.moderation → 422
`{"error": "Prompt failed the safety check."}`; Fault.moderation_output → 200 with `is_image_safe: false`
and `url: null` on every image; Fault.failed → 500. A balance (USD) is set through
`POST /ideogram/_sim/credits {"credits": n}`; a request it cannot pay is a 402 (u).

Sources: the official OpenAPI in developer.ideogram.ai's generate-v3 page (fields, enums, the 200 example
with its ephemeral URL, 400/401/422/429 and GenerateImageSafetyError `{"error": string}`); a client's
live probe (2026-09-18) for the problem+json bodies: 400 "'prompt' is a required property", 401 "No
authorization token provided", 415 for urlencoded bodies; ideogram.md for prices.

Unverified (u): the resolution each aspect_ratio yields (ASPECT_RESOLUTIONS, from Ideogram's aspect table;
16x9 is 1312x736, not exactly 16:9); every other validation message (jsonschema-style wording); the 401
wording for a bad key (Connexion's "Provided apikey is not valid"); the 402 and its body; the 500 body; the
key shape (any 20+ URL-safe characters); num_images 1–8 and seed 0–2147483647 (ideogram.md, the edit
docs); what an expired link answers (the frame's signed-URL 403); the magic-prompt rewrite and the seeds
of later images; prices and latencies. No Retry-After is documented, so none is sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from simulator.core import Fault, Simulator
from simulator.jobs import start_job
from simulator.media import image_size, still
from simulator.outputs import Hosted

VENDOR = "ideogram"
PREFIX = "/ideogram"
SIMULATOR_KEY = "ideo_sim_kQ7xN2pL9vR4tW8yB3mC6dF1gH5jK0sZ"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{20,}$")
MAX_SEED = 2_147_483_647
MAX_IMAGES = 8
#: "maximum total size 10MB across all style references" (and the same for character references).
MAX_REFERENCE_BYTES = 10 * 1024 * 1024
SAFETY_REFUSAL = "Prompt failed the safety check."
STARTING_CREDITS_USD = 100.0

RESOLUTIONS = (
    "512x1536", "576x1408", "576x1472", "576x1536", "640x1344", "640x1408", "640x1472", "640x1536",
    "704x1152", "704x1216", "704x1280", "704x1344", "704x1408", "704x1472", "736x1312", "768x1088",
    "768x1216", "768x1280", "768x1344", "800x1280", "832x960", "832x1024", "832x1088", "832x1152",
    "832x1216", "832x1248", "864x1152", "896x960", "896x1024", "896x1088", "896x1120", "896x1152",
    "960x832", "960x896", "960x1024", "960x1088", "1024x832", "1024x896", "1024x960", "1024x1024",
    "1088x768", "1088x832", "1088x896", "1088x960", "1120x896", "1152x704", "1152x832", "1152x864",
    "1152x896", "1216x704", "1216x768", "1216x832", "1248x832", "1280x704", "1280x768", "1280x800",
    "1312x736", "1344x640", "1344x704", "1344x768", "1408x576", "1408x640", "1408x704", "1472x576",
    "1472x640", "1472x704", "1536x512", "1536x576", "1536x640",
)  # fmt: skip
#: What each aspect_ratio renders at: a ResolutionV3 value of that shape. (u)
ASPECT_RESOLUTIONS = {
    "1x3": "512x1536", "3x1": "1536x512", "1x2": "704x1408", "2x1": "1408x704", "9x16": "736x1312",
    "16x9": "1312x736", "10x16": "800x1280", "16x10": "1280x800", "2x3": "832x1248", "3x2": "1248x832",
    "3x4": "864x1152", "4x3": "1152x864", "4x5": "896x1120", "5x4": "1120x896", "1x1": "1024x1024",
}  # fmt: skip
RENDERING_SPEEDS = ("FLASH", "TURBO", "DEFAULT", "QUALITY")
MAGIC_PROMPT = ("AUTO", "ON", "OFF")
STYLE_TYPES = ("AUTO", "GENERAL", "REALISTIC", "DESIGN", "FICTION")
STYLE_PRESETS = (
    "80S_ILLUSTRATION", "90S_NOSTALGIA", "ABSTRACT_ORGANIC", "ANALOG_NOSTALGIA", "ART_BRUT", "ART_DECO",
    "ART_POSTER", "AURA", "AVANT_GARDE", "BAUHAUS", "BLUEPRINT", "BLURRY_MOTION", "BRIGHT_ART",
    "C4D_CARTOON", "CHILDRENS_BOOK", "COLLAGE", "COLORING_BOOK_I", "COLORING_BOOK_II", "CUBISM",
    "DARK_AURA", "DOODLE", "DOUBLE_EXPOSURE", "DRAMATIC_CINEMA", "EDITORIAL", "EMOTIONAL_MINIMAL",
    "ETHEREAL_PARTY", "EXPIRED_FILM", "FLAT_ART", "FLAT_VECTOR", "FOREST_REVERIE", "GEO_MINIMALIST",
    "GLASS_PRISM", "GOLDEN_HOUR", "GRAFFITI_I", "GRAFFITI_II", "HALFTONE_PRINT", "HIGH_CONTRAST",
    "HIPPIE_ERA", "ICONIC", "JAPANDI_FUSION", "JAZZY", "LONG_EXPOSURE", "MAGAZINE_EDITORIAL",
    "MINIMAL_ILLUSTRATION", "MIXED_MEDIA", "MONOCHROME", "NIGHTLIFE", "OIL_PAINTING", "OLD_CARTOONS",
    "PAINT_GESTURE", "POP_ART", "RETRO_ETCHING", "RIVIERA_POP", "SPOTLIGHT_80S", "STYLIZED_RED",
    "SURREAL_COLLAGE", "TRAVEL_POSTER", "VINTAGE_GEO", "VINTAGE_POSTER", "WATERCOLOR", "WEIRD",
    "WOODBLOCK_PRINT",
)  # fmt: skip
PALETTE_PRESETS = ("EMBER", "FRESH", "JUNGLE", "MAGIC", "MELON", "MOSAIC", "PASTEL", "ULTRAMARINE")
#: USD per image (ideogram.md, u; FLASH is not priced there and is charged as TURBO) and mean latency (u).
PRICE_USD = {"FLASH": 0.03, "TURBO": 0.03, "DEFAULT": 0.06, "QUALITY": 0.09}
LATENCY_S = {"FLASH": 3.0, "TURBO": 5.0, "DEFAULT": 9.0, "QUALITY": 15.0}
FILE_FIELDS = ("style_reference_images", "character_reference_images", "character_reference_images_mask")
#: Magic prompt's rewrite (u): Ideogram expands the prompt and returns the expansion as data[].prompt.
MAGIC_SUFFIX = " Rendered with balanced composition, crisp detail and natural, even lighting."


def problem(status: int, detail: str) -> Response:
    """Connexion's problem+json error body."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """The frame's injected errors in Ideogram's shape; no Retry-After is documented, so none is sent."""
    return problem(status, message)


class Invalid(Exception):
    """A request Ideogram answers with a 400; the message is its `detail`."""


class Unsupported(Exception):
    """A body of a content type Ideogram does not read (a 415); the message is the content type."""


@dataclass
class Part:
    name: str
    filename: str | None
    data: bytes


def parse_form(content_type: str, body: bytes) -> list[Part]:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        raise Invalid("Request body is not valid multipart/form-data")
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            parts.append(Part(name, part.get_filename(), part.get_payload(decode=True) or b""))
    return parts


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise Invalid(f"{value!r} is not one of {list(allowed)} - '{name}'")
    return value


def _integer(name: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Invalid(f"{value!r} is not of type 'integer' - '{name}'") from None
    if number < low:
        raise Invalid(f"{number} is less than the minimum of {low} - '{name}'")
    if number > high:
        raise Invalid(f"{number} is greater than the maximum of {high} - '{name}'")
    return number


def _check_palette(raw: Any) -> None:
    try:
        palette = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise Invalid("color_palette must be a JSON object") from None
    if isinstance(palette, dict) and set(palette) == {"name"}:
        _one_of("color_palette.name", palette["name"], PALETTE_PRESETS)
        return
    members = palette.get("members") if isinstance(palette, dict) and set(palette) == {"members"} else None
    if not isinstance(members, list) or not members:
        raise Invalid("color_palette must have either a preset 'name' or a list of 'members'")
    for member in members:
        hex_ = member.get("color_hex") if isinstance(member, dict) else None
        if not isinstance(hex_, str) or not re.fullmatch(r"#[0-9A-Fa-f]{6}", hex_):
            raise Invalid(f"{hex_!r} is not a valid color_hex - 'color_palette.members'")
        weight = member.get("color_weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.05 <= weight <= 1.0:
            raise Invalid("color_weight must be between 0.05 and 1.0 - 'color_palette.members'")


def _check_images(name: str, files: list[bytes], most: int | None = None) -> None:
    if most is not None and len(files) > most:
        raise Invalid(f"At most {most} image(s) may be given in {name}")
    if sum(len(f) for f in files) > MAX_REFERENCE_BYTES:
        raise Invalid(f"The total size of {name} must be at most 10MB")
    for data in files:
        kind_ok = data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")) or (
            data[:4] == b"RIFF" and data[8:12] == b"WEBP"
        )
        if not kind_ok or image_size(data) is None:
            raise Invalid(f"Invalid image provided in {name}: images must be JPEG, PNG or WebP")


@dataclass
class Ask:
    prompt: str
    width: int
    height: int
    resolution: str
    speed: str
    count: int
    seed: int | None
    style_type: str
    magic: str


def validate(fields: dict[str, Any], files: dict[str, list[bytes]]) -> Ask:
    """The request as Ideogram reads it; raises Invalid with the 400's detail."""
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or prompt == "":
        raise Invalid("'prompt' is a required property")
    if "resolution" in fields and "aspect_ratio" in fields:
        raise Invalid("Only one of 'resolution' and 'aspect_ratio' may be provided")
    if "resolution" in fields:
        resolution = _one_of("resolution", fields["resolution"], RESOLUTIONS)
    else:
        resolution = ASPECT_RESOLUTIONS[
            _one_of("aspect_ratio", fields.get("aspect_ratio", "1x1"), tuple(ASPECT_RESOLUTIONS))
        ]
    speed = _one_of("rendering_speed", fields.get("rendering_speed", "DEFAULT"), RENDERING_SPEEDS)
    magic = _one_of("magic_prompt", fields.get("magic_prompt", "AUTO"), MAGIC_PROMPT)
    style_type = _one_of("style_type", fields.get("style_type", "GENERAL"), STYLE_TYPES)
    if "style_preset" in fields:
        _one_of("style_preset", fields["style_preset"], STYLE_PRESETS)
    count = _integer("num_images", fields.get("num_images", 1), 1, MAX_IMAGES)
    seed = _integer("seed", fields["seed"], 0, MAX_SEED) if "seed" in fields else None
    codes = fields.get("style_codes") or []
    codes = [codes] if isinstance(codes, str) else codes
    if not isinstance(codes, list):
        raise Invalid(f"{codes!r} is not of type 'array' - 'style_codes'")
    if codes:
        if "style_type" in fields or files.get("style_reference_images"):
            raise Invalid("style_codes cannot be used with style_type or style_reference_images")
        for code in codes:
            if not re.fullmatch(r"[0-9A-Fa-f]{8}", str(code)):
                raise Invalid(f"{code!r} is not an 8 character hexadecimal style code - 'style_codes'")
    if "color_palette" in fields:
        _check_palette(fields["color_palette"])
    _check_images("style_reference_images", files.get("style_reference_images", []))
    _check_images("character_reference_images", files.get("character_reference_images", []), most=1)
    masks = files.get("character_reference_images_mask", [])
    if masks:
        _check_images("character_reference_images_mask", masks)
        if len(masks) != len(files.get("character_reference_images", [])):
            raise Invalid(
                "character_reference_images_mask must match the number of character_reference_images"
            )
    width, height = (int(x) for x in resolution.split("x"))
    resolved_style = "GENERAL" if style_type == "AUTO" else style_type
    return Ask(prompt, width, height, resolution, speed, count, seed, resolved_style, magic)


async def read_request(request: Request) -> tuple[dict[str, Any], dict[str, list[bytes]]]:
    """Text fields and uploaded files of a multipart or JSON body; raises Invalid or Unsupported."""
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    if content_type.startswith("application/json"):
        try:
            fields = json.loads(body)
        except ValueError:
            raise Invalid("Request body is not valid JSON") from None
        if not isinstance(fields, dict):
            raise Invalid("Request body must be a JSON object")
        return {k: v for k, v in fields.items() if k not in FILE_FIELDS}, {}
    if not content_type.startswith("multipart/form-data"):
        raise Unsupported(content_type)
    fields: dict[str, Any] = {}
    files: dict[str, list[bytes]] = {}
    for part in parse_form(content_type, body):
        if part.name in FILE_FIELDS:
            files.setdefault(part.name, []).append(part.data)
        elif part.name == "style_codes":
            fields.setdefault("style_codes", []).append(part.data.decode("utf-8", "replace"))
        elif part.data:  # an empty form field is an absent one (the docs' own samples send them empty)
            fields[part.name] = part.data.decode("utf-8", "replace")
    return fields, files


@dataclass
class Account:
    credits_usd: float = STARTING_CREDITS_USD
    lock: threading.Lock = field(default_factory=threading.Lock)


def router(sim: Simulator) -> APIRouter:
    api = APIRouter()
    hosted = Hosted(sim, PREFIX)
    account = Account()

    sim.keeps_fresh(account, Account)  # a reset starts the account afresh

    @api.post("/v1/ideogram-v3/generate")
    async def generate(request: Request) -> Response:
        key = request.headers.get("api-key")
        if not key:
            return problem(401, "No authorization token provided")
        if not KEY_PATTERN.match(key):
            return problem(401, "Provided apikey is not valid")
        try:
            fields, files = await read_request(request)
            ask = validate(fields, files)
        except Unsupported as wrong:
            return problem(415, f"Invalid Content-type ({wrong}), expected multipart/form-data or JSON data")
        except Invalid as invalid:
            return problem(400, str(invalid))
        cost = PRICE_USD[ask.speed] * ask.count
        with account.lock:
            if account.credits_usd < cost:
                return problem(402, "Insufficient credits: please top up your API balance")
        job = start_job(
            sim, VENDOR, LATENCY_S[ask.speed], {k: v for k, v in fields.items() if k != "color_palette"},
            faults=(Fault.failed, Fault.moderation, Fault.moderation_output, Fault.expired),
        )  # fmt: skip
        if job.fault is Fault.moderation:
            await asyncio.sleep(0.1 * job.latency)  # the prompt check runs before generation
            return JSONResponse({"error": SAFETY_REFUSAL}, status_code=422)
        await asyncio.sleep(job.latency)
        if job.fault is Fault.failed:
            return problem(
                500, "The server encountered an internal error and was unable to complete your request."
            )
        with account.lock:
            account.credits_usd -= cost
        final_prompt = ask.prompt if ask.magic == "OFF" else ask.prompt.rstrip() + MAGIC_SUFFIX
        base_seed = ask.seed if ask.seed is not None else sim.random.randint(0, MAX_SEED)
        expires = int(time.time() + sim.config.output_ttl_s)
        data = []
        for i in range(ask.count):
            seed = (base_seed + i) % (MAX_SEED + 1)
            url = None
            safe = job.fault is not Fault.moderation_output
            if safe:
                name = f"{uuid.uuid4().hex[:22]}.png"
                render = lambda p=final_prompt, w=ask.width, h=ask.height: still(p, w, h, "png")  # noqa: E731
                shape = (VENDOR, ask.resolution, ask.style_type)
                hosted.put(name, render, "image/png", shape=shape, fault=job.fault)
                signature = hashlib.sha256(f"{name}:{expires}".encode()).hexdigest()
                url = f"{hosted.url(request, name)}?exp={expires}&sig={signature}"
            data.append(
                {"prompt": final_prompt, "resolution": ask.resolution, "is_image_safe": safe, "seed": seed,
                 "url": url, "style_type": ask.style_type}
            )  # fmt: skip
        return JSONResponse({"created": datetime.now(UTC).isoformat(), "data": data})

    hosted.route(api)

    @api.get("/_sim/credits")
    async def get_credits() -> dict[str, float]:
        return {"credits": account.credits_usd}

    @api.post("/_sim/credits")
    async def set_credits(changes: dict[str, float]) -> dict[str, float]:
        with account.lock:
            account.credits_usd = float(changes.get("credits", account.credits_usd))
        return {"credits": account.credits_usd}

    return api
