"""Leonardo.ai's Production API v1: Phoenix, Flux, Lucid and SDXL-family images (LeonardoImage), and video from
its motion models (LeonardoVideo: Motion 2.0, Veo 3, Kling 2.x).

Plain httpx through the base's `request`: Leonardo ships no official Python SDK (its SDKs are TypeScript, Go …).
A generation is `POST /generations` (answered with a generationId and its cost), then `GET /generations/{id}` until
COMPLETE or FAILED; the first generated image is downloaded at once. Leonardo serves its REST API from Hasura, so
its answers have Hasura's habits, mapped here: a key that is not a UUID gets a 500 "Invalid response from
authorization hook" (auth, not a passing fault), a generation that is not there is a 200 with null (not_found),
unknown body fields are refused (only documented fields are sent).

Models: a card names a model by a readable name (phoenix-1.0) and gives its Leonardo modelId as its vendor_id. A
card whose name is itself a UUID (added through CUTROOM_CARDS) is sent as that modelId.

Inputs: Leonardo takes images by upload only. A `reference` input becomes the init image (image-to-image,
option init_strength) and `style_reference` inputs image prompts (SDXL models): each local image is sniffed
(providers.inputs.local_media) before any request, then `POST /init-image` hands out a presigned S3 form, which
gets the bytes without our key. An upload is reused for the same bytes for UPLOAD_REUSE_S.

Moderation: a flagged prompt is a 400 "content moderation filter: <term>" (moderation_input); a flagged output
completes with `nsfw: true` on its image, and is never fetched (moderation_output).

Cost: the create answers `cost: {amount, unit}`. Dollars (pay-as-you-go accounts) are booked as they are; credits
have no fixed dollar value (it depends on the plan), so such a job is booked at its card's price.

Video: `POST /generations-image-to-video` from a start frame (`imageId` + `imageType`), else
`POST /generations-text-to-video`; the job is polled like an image's, and the clip is at
`generated_images[0].motionMP4URL`. A start or end frame that is a file (a keyframe, or the previous clip's last
frame) is uploaded through `/init-image` (UPLOADED); one that names a Leonardo image generation ("leonardo:<id>",
no file) is sent as that generation's first image (GENERATED: the image id, not the generation id). The card's
`vendor_id` is the wire model name (MOTION2 …); the frame's width and height follow the aspect at the resolution.

Who retries what: nothing here repeats the create (Leonardo takes no idempotency key: a repeated POST is a second
paid generation); transient failures go up as ProviderError(rate_limited | generation_failed) for the caller's
retries, and wait_for waits out a failing poll or download.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image

from cutroom.assets import AssetSpec, InputRef
from cutroom.capabilities import Capability
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.inputs import local_media
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.sizes import asked_size
from providers.vendor import VendorAdapter

NAME = "leonardo"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: (u) The simulator's cap; Leonardo documents none for the API.
MAX_PROMPT = 1500
#: OpenAPI: width and height are multiples of 8 from 32 up (to 1536, or 2048 on Lucid: the Lucid guides send 1920).
SIDE_STEP = 8
MIN_SIDE = 32
#: The size of a spec that asks for no shape: Leonardo's own default (1024x768) is never left to it.
DEFAULT_SIZE = (1024, 1024)
#: Init-image formats POST /init-image takes, by MIME type; other images are sent as PNG.
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
#: (u) third-party docs: at most 4 image prompts.
MAX_IMAGE_PROMPTS = 4
#: How long an uploaded init image is reused for the same bytes. (u) Leonardo keeps init images in the account;
#: an hour stays clear of any clean-up.
UPLOAD_REUSE_S = 3600.0
#: Phoenix in quality mode (alchemy) refuses a lower contrast (Phoenix guide).
PHOENIX_ALCHEMY_MIN_CONTRAST = 2.5


@dataclass(frozen=True)
class Model:
    """What Leonardo needs to know of a model beyond its card: its modelId and its family's bounds."""

    id: str
    family: str = ""  # phoenix | flux | lucid; any other model has the defaults
    max_side: int = 1536
    #: OpenAPI: "2147483637 for Flux and 9999999998 for other models".
    max_seed: int = 9_999_999_998


#: Bounds by family, the first word of a card's name (phoenix-1.0, flux-dev, lucid-origin).
FAMILIES = {"phoenix": {}, "flux": {"max_seed": 2_147_483_637}, "lucid": {"max_side": 2048}}


def model_of(card: ModelCard) -> Model:
    """The Leonardo model of a card: its modelId is the card's vendor_id, else its name when that is a UUID."""
    model_id = card.vendor_id or (card.model if UUID_RE.match(card.model) else None)
    if model_id is None:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"no Leonardo modelId is known for {card.model}: give its card the model's UUID as vendor_id",
            provider=NAME,
        )
    family = card.model.split("-")[0]
    return Model(model_id, family, **FAMILIES[family]) if family in FAMILIES else Model(model_id)


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The asked size within Leonardo's bounds: scaled to fit, each side on the 8-pixel grid."""
    scale = min(1.0, max_side / max(width, height))
    scale = max(scale, MIN_SIDE / min(width, height))

    def side(x: float) -> int:
        return min(max_side, max(MIN_SIDE, round(x / SIDE_STEP) * SIDE_STEP))

    return side(width * scale), side(height * scale)


def _dollars(job: dict[str, Any]) -> float | None:
    """A create's cost in USD when Leonardo states it in dollars; credits do not convert."""
    cost = job.get("cost")
    if not isinstance(cost, dict) or str(cost.get("unit", "")).upper() not in ("DOLLARS", "USD"):
        return None
    try:
        return float(cost["amount"])
    except (KeyError, TypeError, ValueError):
        return None


class _Leonardo(VendorAdapter):
    """What images and video share: init-image uploads, the generation poll, downloads, Leonardo's errors."""

    vendor_name = NAME
    #: The field of a COMPLETE generation's first image that holds the output.
    output_field: str = "url"

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        # Per generation id: the cost its create reported in dollars, and the output URL a COMPLETE poll saw.
        self._costs: dict[str, float] = {}
        self._images: dict[str, str] = {}
        # Init image ids by the sha256 of their bytes, with when they were uploaded.
        self._uploads: dict[str, tuple[str, float]] = {}

    def _job_id(self, job: Any) -> str:
        """A create's generationId, its dollar cost kept for the fetch."""
        job = job if isinstance(job, dict) else {}
        generation_id = job.get("generationId")
        if isinstance(generation_id, str) and (dollars := _dollars(job)) is not None:
            self._costs[generation_id] = dollars
        return generation_id if isinstance(generation_id, str) else ""

    def _upload(self, ref: InputRef) -> str:
        """A local image as a Leonardo init image id: POST /init-image, then the bytes to the presigned S3 form
        it hands out (without our key)."""
        data, mime = local_media(ref, NAME, ("image",))
        if mime not in EXTENSIONS:  # a GIF, BMP … as PNG, which Leonardo takes
            with Image.open(io.BytesIO(data)) as image:
                converted = io.BytesIO()
                image.convert("RGBA").save(converted, "PNG")
            data, mime = converted.getvalue(), "image/png"
        digest = hashlib.sha256(data).hexdigest()
        kept = self._uploads.get(digest)
        if kept is not None and time.monotonic() - kept[1] < UPLOAD_REUSE_S:
            return kept[0]
        extension = EXTENSIONS[mime]
        answer = self.request("POST", "/init-image", json={"extension": extension}).json()
        upload = answer.get("uploadInitImage") if isinstance(answer, dict) else None
        if not isinstance(upload, dict) or not all(
            isinstance(upload.get(k), str) for k in ("id", "url", "fields")
        ):
            raise ProviderError(
                ErrorKind.generation_failed, "init-image answered without an upload form", provider=NAME
            )
        fields = json.loads(upload["fields"])  # a JSON string, as Leonardo sends it
        stored = self.http.post(
            upload["url"],
            data=fields,
            files={"file": (f"init.{extension}", data, mime)},
            timeout=self.timeout,
        )
        if stored.is_error:  # S3's XML: an expired or refused policy; a new form is a retry away
            raise ProviderError(
                ErrorKind.generation_failed,
                f"uploading the {ref.role} image: HTTP {stored.status_code}: {stored.text[:200]}",
                provider=NAME,
            )
        self._uploads[digest] = (upload["id"], time.monotonic())
        return upload["id"]

    # -- the job ---------------------------------------------------------------------------------------------------

    def _generation(self, job_id: str) -> dict[str, Any]:
        answer = self.request("GET", f"/generations/{job_id}").json()
        generation = answer.get("generations_by_pk") if isinstance(answer, dict) else None
        if not isinstance(generation, dict):  # Hasura's by-pk answer for a row that is not there: 200, null
            raise ProviderError(ErrorKind.not_found, f"no generation {job_id} at Leonardo", provider=NAME)
        return generation

    def status(self, job: JobRef) -> JobStatus:
        generation = self._generation(job.job_id)
        state = generation.get("status")
        if state == "COMPLETE":
            return self._complete(job.job_id, generation)
        if state == "FAILED":  # Leonardo gives no reason
            return JobStatus(state=JobState.FAILED, error="FAILED", error_kind=ErrorKind.generation_failed)
        return JobStatus(state=JobState.PENDING)  # PENDING is queued and running alike, without progress

    def _complete(self, job_id: str, generation: dict[str, Any]) -> JobStatus:
        images = [i for i in generation.get("generated_images") or [] if isinstance(i, dict)]
        if not images or not isinstance(images[0].get(self.output_field), str):
            return JobStatus(
                state=JobState.FAILED,
                error=f"COMPLETE without {self.output_field}",
                error_kind=ErrorKind.generation_failed,
            )
        if images[0].get("nsfw"):  # Leonardo flags rather than blocks: a flagged picture is never fetched
            return JobStatus(
                state=JobState.FAILED,
                error="the output was flagged NSFW by Leonardo",
                error_kind=ErrorKind.moderation_output,
            )
        self._images[job_id] = images[0][self.output_field]
        return JobStatus(state=JobState.SUCCEEDED, progress=1.0)

    def result(self, job: JobRef) -> Output:
        url = self._images.pop(job.job_id, None)
        if url is None:
            ended = self.status(job)
            url = self._images.pop(job.job_id, None)
            if url is None:
                raise ProviderError(
                    ended.error_kind or ErrorKind.not_found,
                    f"generation {job.job_id} has no image ({ended.error or ended.state.value})",
                    provider=NAME,
                )
        output = self.download(url)
        cost = self._costs.pop(job.job_id, None)
        return output if cost is None else output.model_copy(update={"cost_usd": round(cost, 4)})

    # -- errors ------------------------------------------------------------------------------------------------------

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        lowered = detail.lower()
        if "authorization hook" in lowered or "authentication hook" in lowered:
            return ErrorKind.auth  # a malformed key is a 500 here: not a passing fault
        if "content moderation" in lowered:
            return ErrorKind.moderation_input
        if status != 429 and "not enough" in lowered and "token" in lowered:
            return ErrorKind.insufficient_credits
        return None

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """Hasura's `{"error", "path", "code"}`, with the path when it names a field."""
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            path = str(body.get("path") or "")
            field = path.rsplit(".", 1)[-1] if path.startswith("$.") else ""
            return f"{body['error']} ({field})" if field else body["error"]
        return super().error_detail(body, response)


class LeonardoImage(_Leonardo):
    capability = Capability.image

    # -- checks before paying ------------------------------------------------------------------------------------

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        model, settings = model_of(card), card.settings(spec)
        problems = []
        if not spec.prompt.strip():
            problems.append("an empty prompt")
        if settings.get("alchemy") and settings.get("ultra"):
            problems.append("alchemy and ultra together (pick one mode)")
        contrast = float(settings.get("contrast") or PHOENIX_ALCHEMY_MIN_CONTRAST)  # type: ignore[arg-type]
        if model.family == "phoenix" and settings.get("alchemy") and contrast < PHOENIX_ALCHEMY_MIN_CONTRAST:
            problems.append(
                f"contrast {contrast:g} with alchemy (needs {PHOENIX_ALCHEMY_MIN_CONTRAST} or more)"
            )
        roles = [ref.role for ref in spec.inputs]
        if roles.count("reference") > 1:
            problems.append(f"{roles.count('reference')} reference images (one init image)")
        if roles.count("style_reference") > MAX_IMAGE_PROMPTS:
            problems.append(f"{roles.count('style_reference')} style references (up to {MAX_IMAGE_PROMPTS})")
        if "init_strength" in settings and "reference" not in roles:
            problems.append("init_strength without a reference image")
        asked = asked_size(spec) or DEFAULT_SIZE
        width, height = fit_size(*asked, model.max_side)
        if abs(math.log(width / height * asked[1] / asked[0])) > 0.08:
            problems.append(f"{asked[0]}x{asked[1]} (too far from any size it makes)")
        if problems:
            raise ProviderError(
                ErrorKind.invalid_input, f"{card.model} cannot make {'; '.join(problems)}", provider=NAME
            )
        for ref in spec.inputs:  # a file that is not an image is refused here, before any upload
            local_media(ref, NAME, ("image",))

    # -- the request ---------------------------------------------------------------------------------------------

    def body(self, spec: AssetSpec, card: ModelCard) -> dict[str, Any]:
        """The createGeneration variables: only fields Leonardo documents (Hasura refuses any other)."""
        model, settings = model_of(card), card.settings(spec)
        width, height = fit_size(*(asked_size(spec) or DEFAULT_SIZE), model.max_side)
        body: dict[str, Any] = {
            "prompt": spec.prompt[:MAX_PROMPT],
            "modelId": model.id,
            "width": width,
            "height": height,
            "num_images": 1,  # Leonardo's default is 4, each paid for
        }
        if seed := spec.seed % (model.max_seed + 1):  # 0: Leonardo picks one
            body["seed"] = seed
        return body | settings  # the options are named as Leonardo names them

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        body = self.body(spec, card)
        if reference := next((r for r in spec.inputs if r.role == "reference"), None):
            body["init_image_id"] = self._upload(reference)
        if prompts := [self._upload(r) for r in spec.inputs if r.role == "style_reference"]:
            body["imagePrompts"] = prompts
        answer = self.request("POST", "/generations", json=body).json()
        return self._job_id(answer.get("sdGenerationJob") if isinstance(answer, dict) else None)


#: Leonardo's resolution names, and the frame each sends by aspect (width, height). (u) 480p is Motion 2.0's
#: 832x480; the others are the docs' samples (1280x720, 1920x1080) and their turns.
RESOLUTIONS = {"480p": "RESOLUTION_480", "720p": "RESOLUTION_720", "1080p": "RESOLUTION_1080"}
FRAMES = {
    "480p": {"16:9": (832, 480), "9:16": (480, 832), "1:1": (480, 480)},
    "720p": {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (720, 720)},
    "1080p": {"16:9": (1920, 1080), "9:16": (1080, 1920), "1:1": (1080, 1080)},
}
#: Input roles that start a clip; `last_frame` ends it (endFrameImage).
START_ROLES = ("keyframe", "first_frame")


class LeonardoVideo(_Leonardo):
    capability = Capability.video
    output_field = "motionMP4URL"

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        roles = [ref.role for ref in spec.inputs]
        problems = []
        if not spec.prompt.strip():
            problems.append("an empty prompt")
        if sum(roles.count(role) for role in START_ROLES) > 1:
            problems.append("two start frames (one imageId)")
        if roles.count("last_frame") > 1:
            problems.append("two end frames")
        if "last_frame" in roles and not any(role in roles for role in START_ROLES):
            problems.append("an end frame without a start frame (Leonardo needs both)")
        if problems:
            raise ProviderError(
                ErrorKind.invalid_input, f"{card.model} cannot make {'; '.join(problems)}", provider=NAME
            )

    def frame(self, spec: AssetSpec, card: ModelCard) -> tuple[str, int, int]:
        """The resolution (the option, else the largest the card makes within the spec's short side) and the
        frame it sends for the spec's aspect."""
        resolution = card.settings(spec).get("resolution")
        if resolution is None:
            sizes = [s for s in card.sizes if s in FRAMES]
            asked = asked_size(spec)
            short = min(asked) if asked else int(sizes[0].removesuffix("p"))
            fitting = [s for s in sizes if int(s.removesuffix("p")) <= short]
            resolution = fitting[-1] if fitting else sizes[0]
        aspect = spec.aspect.value if spec.aspect is not None else card.aspects[0]
        width, height = FRAMES[str(resolution)][aspect]
        return str(resolution), width, height

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        resolution, width, height = self.frame(spec, card)
        settings = {k: v for k, v in card.settings(spec).items() if k != "resolution"}
        body: dict[str, Any] = {
            "prompt": spec.prompt[:MAX_PROMPT],
            "model": card.vendor_id or card.model,
            "resolution": RESOLUTIONS[resolution],
            "width": width,
            "height": height,
            "isPublic": False,
        }
        if spec.duration_s is not None:
            body["duration"] = int(spec.duration_s)
        start = next((r for r in spec.inputs if r.role in START_ROLES), None)
        end = next((r for r in spec.inputs if r.role == "last_frame"), None)
        path = "/generations-text-to-video"
        if start is not None:
            image_id, image_type = self._image(start)
            body |= {"imageId": image_id, "imageType": image_type}
            path = "/generations-image-to-video"
        if end is not None:
            end_id, end_type = self._image(end)
            body["endFrameImage"] = {"id": end_id, "type": end_type}
        answer = self.request("POST", path, json=body | settings).json()
        return self._job_id(answer.get("motionVideoGenerationJob") if isinstance(answer, dict) else None)

    def _image(self, ref: InputRef) -> tuple[str, str]:
        """A frame as Leonardo takes it: a file (a keyframe, a last frame) uploaded, else the first image of the
        Leonardo image generation it names."""
        ours = f"{NAME}:"
        if ref.uri.startswith("file:") or not (ref.continues or "").startswith(ours):
            return self._upload(ref), "UPLOADED"
        generation_id = self.vendor.checks_job_id((ref.continues or "").removeprefix(ours))
        generation = self._generation(generation_id)
        images = [i for i in generation.get("generated_images") or [] if isinstance(i, dict)]
        if generation.get("status") != "COMPLETE" or not images or not isinstance(images[0].get("id"), str):
            raise ProviderError(
                ErrorKind.invalid_input,
                f"generation {generation_id} has no finished image to start from",
                provider=NAME,
            )
        if images[0].get("motionMP4URL"):
            raise ProviderError(
                ErrorKind.invalid_input,
                f"generation {generation_id} is a video: start from its last frame (a file) instead",
                provider=NAME,
            )
        return images[0]["id"], "GENERATED"
