"""Creatomate's render API (v1, as the official Node SDK creatomate@1.2.1 calls it), for plain HTTP clients.

Covered: `POST /v1/renders` with `template_id` and `modifications` (element name, or `name.property`, to value),
`output_format`, `max_width`/`max_height`, `render_scale`, `webhook_url`, `metadata`, answered 202 with an array
of one Render object; `GET /v1/renders/{id}`; the key as `Authorization: Bearer …`; the webhook, POSTed once with
the Render object when the render ends.

The project holds three stock templates (below), each with the elements Headline, Body, CTA (text) and Image,
Video, Voice (media); a template id of another shape is a 400, an unknown one a 400 too. Renders run on the
simulator's clock (simulator.jobs): planned, waiting, rendering, then succeeded (a real render at `url`) or failed
with `error_message`. Media modifications are fetched at create, as Creatomate fetches them: a link on loopback
(the test S3's presigned links) for real; one offline cannot reach is left out (the image drawn from the headline
instead). The render is composed by the local stand-in's `compose` (providers/local/template.py), small, at the
template's shape: as long as the voice, else the clip, else the template's own length; a png or jpg when asked.
A link that cannot be fetched fails the render. Credits: each render takes one; at none, a 402. Control endpoint
(under the prefix, so the frame logs and may fault it): `{PREFIX}/_sim/credits` (GET, POST {"credits": n}).

Unverified (u): every hint and error_message text; the 400 for an unknown template (rather than a 404); the key's
shape (64 hex here); one credit per render; failures for unreachable media; moderation failures (Creatomate
documents none: the faults' messages are made up so the matrix can run).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from PIL import Image

from providers.local.template import Modifications, compose
from simulator import media
from simulator.core import Simulator, outbound_tls
from simulator.jobs import Phase, SimJob, start_job
from simulator.media import FetchFailed, fetch_local
from simulator.outputs import Hosted

VENDOR = "creatomate"
PREFIX = "/creatomate"
API = "/v1/renders"
KEY = re.compile(r"^[0-9a-f]{64}$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
LATENCY_S = 30.0
FORMATS = ("mp4", "gif", "jpg", "png")
#: What each media element holds: the modification's URL is fetched as this.
MEDIA_ELEMENTS = ("Image", "Video", "Voice")
TEXT_ELEMENTS = ("Headline", "Body", "CTA")
DEFAULT_CREDITS = 10_000
#: The rendered file's longer side: the right shape, kept small so tests stay fast.
RENDER_LONG_SIDE = 480
WEBHOOK_TIMEOUT_S = 5.0
FAILURES = {
    Phase.failed: "The render failed due to an internal error. Please try again.",
    Phase.moderated_input: "A source file was rejected by content moderation.",
    Phase.moderated_output: "The rendered output was rejected by content moderation.",
}


@dataclass(frozen=True)
class Template:
    name: str
    width: int
    height: int
    duration_s: float
    palette: tuple[str, ...] = ("#0F172A", "#F97316")


#: The stock templates every simulated project holds.
TEMPLATES = {
    "5b1c0d2e-3f4a-4b5c-8d6e-7f8091a2b3c4": Template("Brand promo 16:9", 1920, 1080, 5.0),
    "6c2d1e3f-4a5b-4c6d-9e7f-8091a2b3c4d5": Template("Brand story 9:16", 1080, 1920, 5.0),
    "7d3e2f4a-5b6c-4d7e-af80-91a2b3c4d5e6": Template("Brand square 1:1", 1080, 1080, 5.0),
}


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """Creatomate's error body: `{"hint": …}`, as its SDK reads it."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return JSONResponse({"hint": message}, status_code=status, headers=headers)


class Invalid(Exception):
    """A request Creatomate refuses with a 400 and a hint."""


@dataclass
class Render:
    job: SimJob
    template_id: str
    template: Template
    output_format: str
    width: int
    height: int
    modifications: dict[str, Any]
    metadata: str | None
    webhook_url: str | None
    #: The fetched media by element (None: a link offline cannot reach); a fetch failure fails the render.
    sources: dict[str, bytes | None]
    fetch_error: str | None = None


@dataclass
class Account:
    renders: dict[str, Render] = field(default_factory=dict)
    credits: int = DEFAULT_CREDITS
    lock: threading.Lock = field(default_factory=threading.Lock)


def output_size(template: Template, body: dict[str, Any]) -> tuple[int, int]:
    """The render's size: the template's, scaled by render_scale or to fit max_width/max_height."""
    scale = body.get("render_scale", 1.0)
    if not _number(scale) or not 0 < scale <= 10:
        raise Invalid("render_scale must be a number above 0")
    fits = []
    for name, side in (("max_width", template.width), ("max_height", template.height)):
        value = body.get(name)
        if value is not None:
            if not _number(value) or value < 1:
                raise Invalid(f"{name} must be a positive number")
            fits.append(value / side)
    if fits:  # max_width and max_height override render_scale, and only ever scale down (u)
        scale = min(1.0, *fits)
    return max(1, round(template.width * scale)), max(1, round(template.height * scale))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def element_of(key: str) -> tuple[str, str]:
    """A modification key as (element, property): `Title` is the element's main property."""
    element, _, prop = key.partition(".")
    return element, prop


def checked(body: dict[str, Any]) -> tuple[str, Template, str, dict[str, Any]]:
    """The template id, template, output format and modifications of a valid create; Invalid otherwise."""
    if "source" in body or "tags" in body:
        raise Invalid("This simulator renders stored templates only: give template_id")
    template_id = body.get("template_id")
    if not isinstance(template_id, str) or not UUID.fullmatch(template_id):
        raise Invalid("The template_id is not a valid ID")
    template = TEMPLATES.get(template_id)
    if template is None:
        raise Invalid(f"The template with ID {template_id} was not found")
    fmt = body.get("output_format", "mp4")
    if fmt not in FORMATS:
        raise Invalid(f"output_format must be one of {', '.join(FORMATS)}")
    if fmt == "gif":
        raise Invalid("This simulator does not render gif")  # (u) a real project does
    mods = body.get("modifications", {})
    if not isinstance(mods, dict) or not all(isinstance(k, str) for k in mods):
        raise Invalid("modifications must be an object of element names to values")
    for key, value in mods.items():
        element, prop = element_of(key)
        if element in MEDIA_ELEMENTS and prop in ("", "source"):
            if not isinstance(value, str) or not value.startswith(("http://", "https://")):
                raise Invalid(f"The source of element '{element}' must be a URL")
        elif not isinstance(value, str | int | float | bool) and value is not None:
            raise Invalid(f"The modification '{key}' has an invalid value")
    webhook = body.get("webhook_url")
    if webhook is not None and (
        not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))
    ):
        raise Invalid("webhook_url must be a valid URL")
    return template_id, template, fmt, mods


async def fetched_sources(mods: dict[str, Any]) -> tuple[dict[str, bytes | None], str | None]:
    """Each media element's bytes, as Creatomate downloads them; the first download that failed, if one did."""
    sources: dict[str, bytes | None] = {}
    for key, value in mods.items():
        element, prop = element_of(key)
        if element in MEDIA_ELEMENTS and prop in ("", "source"):
            try:
                sources[element] = await fetch_local(value)
            except FetchFailed as exc:
                return sources, f"The file of element '{element}' could not be downloaded ({exc})"
    return sources, None


def rendered(render: Render, texts: dict[str, str]) -> bytes:
    """The render's file: the template's shape at RENDER_LONG_SIDE, composed like the local stand-in."""
    template = render.template
    scale = RENDER_LONG_SIDE / max(template.width, template.height)
    width, height = round(template.width * scale / 2) * 2, round(template.height * scale / 2) * 2
    mods = Modifications(
        headline=texts.get("Headline", ""),
        body=texts.get("Body", ""),
        cta=texts.get("CTA", ""),
        palette=template.palette,
    )
    with tempfile.TemporaryDirectory(prefix="cutroom-sim-template-") as tmp:
        work = Path(tmp)
        files = {}
        image = render.sources.get("Image") or media.still(mods.headline or template.name, width, height)
        for role, data in (("image", image), ("clip", render.sources.get("Video")),
                           ("voice", render.sources.get("Voice"))):  # fmt: skip
            if data is not None:
                (work / role).write_bytes(data)
                files[role] = work / role
        if render.output_format in ("png", "jpg"):
            data, _ = compose(mods, width, height, work, image=files["image"])
            if render.output_format == "jpg":
                buffer = io.BytesIO()
                Image.open(io.BytesIO(data)).convert("RGB").save(buffer, format="JPEG", quality=90)
                data = buffer.getvalue()
            return data
        duration = None if "voice" in files or "clip" in files else template.duration_s
        data, _ = compose(mods, width, height, work, duration_s=duration, **files)
        return data


def router(sim: Simulator) -> APIRouter:
    account = Account()
    sim.keeps_fresh(account, Account)
    api = APIRouter()
    hosted = Hosted(sim, PREFIX)
    hosted.route(api)
    webhooks: set[asyncio.Task[None]] = set()

    def authorised(request: Request) -> Response | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            return error_response(401, "No API key was provided")
        return None if KEY.match(key) else error_response(401, "The API key is invalid")

    def status_of(render: Render) -> str:
        phase = render.job.phase()
        if render.fetch_error and phase.ended:
            return "failed"
        if phase is Phase.queued:
            early = time.monotonic() - render.job.created < render.job.latency * render.job.queued_share / 2
            return "planned" if early else "waiting"
        if phase is Phase.running:
            return "rendering"
        return "succeeded" if phase is Phase.succeeded else "failed"

    def view(request: Request, render: Render) -> dict[str, Any]:
        status = status_of(render)
        error = None
        if status == "failed":
            error = render.fetch_error or FAILURES.get(render.job.phase(), FAILURES[Phase.failed])
        return {
            "id": render.job.id,
            "status": status,
            "url": hosted.url(request, f"{render.job.id}.{render.output_format}"),
            "snapshot_url": None,
            "template_id": render.template_id,
            "template_name": render.template.name,
            "template_tags": [],
            "output_format": render.output_format,
            "render_scale": 1,
            "width": render.width,
            "height": render.height,
            "frame_rate": None if render.output_format in ("png", "jpg") else 25,
            "duration": None,
            "file_size": None,
            "modifications": render.modifications,
            "webhook_url": render.webhook_url,
            "metadata": render.metadata,
            "error_message": error,
        }

    async def notify(request: Request, render: Render, url: str) -> None:
        """POST the Render object to its webhook_url once, when it ended (best effort)."""
        while status_of(render) not in ("succeeded", "failed"):
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S, verify=outbound_tls()) as http:
            with contextlib.suppress(httpx.HTTPError):  # an unreachable receiver changes nothing
                await http.post(url, json=view(request, render))

    @api.post(API)
    async def create(request: Request) -> Response:
        if (refused := authorised(request)) is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return error_response(400, "The request body is not valid JSON")
        if not isinstance(body, dict):
            return error_response(400, "The request body must be a JSON object")
        try:
            template_id, template, fmt, mods = checked(body)
            width, height = output_size(template, body)
        except Invalid as exc:
            return error_response(400, str(exc))
        with account.lock:
            if account.credits < 1:
                return error_response(402, "You don't have enough credits to render this. Please upgrade.")
            account.credits -= 1
        sources, fetch_error = await fetched_sources(mods)
        texts = {element_of(k)[0]: str(v) for k, v in mods.items()
                 if element_of(k)[0] in TEXT_ELEMENTS and element_of(k)[1] in ("", "text")}  # fmt: skip
        job = start_job(sim, VENDOR, LATENCY_S, body)
        render = Render(job, template_id, template, fmt, width, height, mods, body.get("metadata"),
                        body.get("webhook_url"), sources, fetch_error)  # fmt: skip
        account.renders[job.id] = render
        if fetch_error is None:
            hosted.put(
                f"{job.id}.{fmt}",
                lambda: rendered(render, texts),
                media.MIME.get(fmt, "video/mp4"),
                shape=(VENDOR, template_id, fmt, width, height),
                ready_at=job.ends,
                fault=job.fault,
            )
        if render.webhook_url:
            notifier = asyncio.create_task(notify(request, render, render.webhook_url))
            webhooks.add(notifier)  # the loop keeps only weak references to tasks
            notifier.add_done_callback(webhooks.discard)
        return JSONResponse([view(request, render)], status_code=202)

    @api.get(API + "/{render_id}")
    async def status(render_id: str, request: Request) -> Response:
        if (refused := authorised(request)) is not None:
            return refused
        render = account.renders.get(render_id)
        if render is None:
            return error_response(404, "The render was not found")
        return JSONResponse(view(request, render))

    @api.get("/_sim/credits")
    async def get_credits() -> dict[str, int]:
        return {"credits": account.credits}

    @api.post("/_sim/credits")
    async def set_credits(changes: dict[str, int]) -> dict[str, int]:
        account.credits = int(changes.get("credits", account.credits))
        return {"credits": account.credits}

    return api
