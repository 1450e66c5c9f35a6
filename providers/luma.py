"""Luma Dream Machine through the official `lumaai` SDK: Ray video (LumaVideo) and Photon images (LumaImage).

Besides new generations: extend / reverse extend (keyframes frame0 / frame1 naming a generation), loop, Photon's
image, style and character references (input roles reference, style_reference, character_reference), and the
SDK's edits of a `source` input (spec.operation): video modify (option `mode`) and reframe, image modify
(modify_image_ref; option `weight`) and reframe, upscale (option `resolution`), add audio. The models, their
options and prices are declared in providers/luma.toml.

Who retries what: the client has `max_retries=0` (the base builds every SDK client so), because the Stainless
SDK would otherwise repeat a POST after a 5xx or timeout with no idempotency key — a second paid generation.
Transient failures surface as ProviderError(rate_limited | generation_failed); the Prefect task retries them
(re-attaching to the journaled job id), and wait_for waits out a failing poll.

Callbacks: with CUTROOM_CALLBACK_URL set (or `callback_url=`), every create carries it as Luma's callback_url
and the process's receiver (providers.callbacks) is started; Luma then posts each state change there, and
wait_for looks as soon as a post says the generation ended. Posts are unsigned: only their id and state are
read, as a prompt to poll.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lumaai
from lumaai.types import Generation

from cutroom.assets import AssetSpec, InputRef, Operation
from cutroom.capabilities import Capability
from cutroom.settings import settings
from providers import callbacks
from providers.callbacks import CallbackNews
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.inputs import link
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.vendor import VendorAdapter

NAME = "luma"
#: An input URI naming an earlier Luma generation, so a continuing shot chains from it (keyframe type generation).
GENERATION_SCHEME = "luma-generation:"
#: Input roles a video takes as keyframes: frame0 starts the clip (extend), frame1 ends it (reverse extend).
FRAME_ROLES = {"first_frame": "frame0", "keyframe": "frame0", "last_frame": "frame1"}
IMAGE_REF_WEIGHT = 0.85
#: Photon's reference fields by input role: image_ref and style_ref are lists of {url, weight},
#: character_ref is one identity's list of image URLs.
REFERENCE_FIELDS = {
    "reference": "image_ref",
    "style_reference": "style_ref",
    "character_reference": "character_ref",
}
#: Most images per reference field: docs.lumalabs.ai/docs/image-generation says "up to 4 images as references";
#: (u) 4 per character identity is ComfyUI's Luma node limit; style_ref has no published limit.
MAX_REFERENCES = {"image_ref": 4, "character_ref": 4}
#: Where a user names each reference, so a refused local file says which setting needs a link instead.
REFERENCE_SETTINGS = {
    "reference": "--reference",
    "style_reference": "brand.style_reference in the brief (or --style-ref)",
    "character_reference": "--character-ref",
}
#: A Generation's states (luma.md); the last two are final.
STATES = ("queued", "dreaming", "completed", "failed")
ENDED_STATES = ("completed", "failed")
#: An upscale without a target size asks for full HD, the step up from Ray's usual 720p.
UPSCALE_RESOLUTION = "1080p"
#: Options that only one edit reads: with anything else they would be dropped unsent, so they are refused.
EDIT_OPTIONS = {"mode": Operation.modify, "weight": Operation.modify}


def callback_news(body: Any) -> CallbackNews | None:
    """A callback body as news: the Generation's id and whether its state is final; None if it is no
    Generation. Only the id and state are read: the post is unsigned, so it merely prompts a poll, and its asset
    URL is never used."""
    if not isinstance(body, dict):
        return None
    job_id, state = body.get("id"), body.get("state")
    if not isinstance(job_id, str) or state not in STATES:
        return None
    return CallbackNews(job_id=job_id, ended=state in ENDED_STATES)


class _Luma(VendorAdapter):
    """What both capabilities share: the client, states, callbacks, downloading."""

    vendor_name = NAME
    transport_errors = (lumaai.APIConnectionError,)
    unreadable_errors = (lumaai.APIResponseValidationError,)
    #: Luma posts each state change to the create's callback_url: wait_for wakes on it (CallbackWoken).
    callback_news = staticmethod(callback_news)

    def __init__(self, model: str | None = None, *, callback_url: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        self._callback_url = callback_url
        # Generations seen on a poll, so fetch needs no second GET for the asset URL.
        self._seen: dict[str, Generation] = {}

    def make_client(self) -> lumaai.LumaAI:
        return lumaai.LumaAI(auth_token=self.api_key, **self.sdk_settings())

    @property
    def callback_url(self) -> str | None:
        """Where Luma posts news of our generations: the constructor's, else CUTROOM_CALLBACK_URL."""
        return self._callback_url or settings().callback_url or None

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        lowered = detail.lower()
        if 400 <= status < 500 and status != 429 and ("credit" in lowered or "balance" in lowered):
            return ErrorKind.insufficient_credits
        if status in (400, 422) and "moderation" in lowered:
            return ErrorKind.moderation_input
        return None

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        if spec.operation is not None and len(spec.inputs) > 1:
            # Luma's edits have a field for their source alone: another input would be dropped unsent.
            raise ProviderError(
                ErrorKind.invalid_input,
                f"Luma's {spec.operation.value} takes only its source input, not {[r.role for r in spec.inputs]}",
                provider=NAME,
            )
        for option, operation in EDIT_OPTIONS.items():
            if option in spec.options and spec.operation is not operation:
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"Luma takes option {option} only for operation {operation.value}",
                    provider=NAME,
                )

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        endpoint, body = self._request(spec, card)
        if callback := self.callback_url:
            callbacks.listen(callback, NAME, callback_news)  # up before Luma can post the first news
            body["callback_url"] = callback
        generation = SENDERS[endpoint](self.client)(**body)
        return generation.id or ""

    def _request(self, spec: AssetSpec, card: ModelCard) -> tuple[str, dict[str, Any]]:
        """The SENDERS key to call and its keyword arguments; refuses what Luma cannot do before any request."""
        raise NotImplementedError

    def _source(self, spec: AssetSpec) -> InputRef:
        """The spec's one `source` input (the card checked there is exactly one)."""
        return next(ref for ref in spec.inputs if ref.role == "source")

    def _media_url(self, ref: InputRef) -> str:
        """A public link to the source; for a Luma generation without one, its output URL (a free read)."""
        generation_id = _generation_id(ref, self.vendor.checks_job_id)
        if link(ref) or generation_id is None:
            return _public_url(ref)
        source = self.client.generations.get(generation_id)
        url = source.assets and (source.assets.video or source.assets.image)
        if source.state != "completed" or not url:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"source generation {generation_id} has no output yet (state {source.state})",
                provider=NAME,
            )
        return url

    def _keyframe(self, ref: InputRef) -> dict[str, str]:
        """An input from a Luma generation chains from it (extend, or reverse extend as frame1); else a public
        image."""
        if generation_id := _generation_id(ref, self.vendor.checks_job_id):
            return {"type": "generation", "id": generation_id}
        return {"type": "image", "url": _public_url(ref)}

    def status(self, job: JobRef) -> JobStatus:
        generation = self.client.generations.get(job.job_id)
        state = generation.state
        if state == "completed":
            self._seen[job.job_id] = generation
            return JobStatus(state=JobState.SUCCEEDED, progress=1.0)
        if state == "failed":
            reason = generation.failure_reason or "failed without a reason"
            kind = None
            if "moderation" in reason.lower():
                # luma.md: the observed text ("Advanced moderation failed") was about the input image.
                output = "output" in reason.lower()
                kind = ErrorKind.moderation_output if output else ErrorKind.moderation_input
            return JobStatus(state=JobState.FAILED, error=reason, error_kind=kind)
        if state == "queued":
            return JobStatus(state=JobState.PENDING, progress=0.0)
        return JobStatus(state=JobState.RUNNING)

    def result(self, job: JobRef) -> Output:
        """Download the output at once (vendor URLs expire); 403/404 means the link is gone."""
        generation = self._seen.pop(job.job_id, None) or self.client.generations.get(job.job_id)
        assets = generation.assets
        url = assets and (assets.video if generation.generation_type == "video" else assets.image)
        if generation.state != "completed" or not url:
            raise ProviderError(
                ErrorKind.not_found,
                f"generation {job.job_id} has no output (state {generation.state})",
                provider=NAME,
            )
        output = self.download(url)
        return output.model_copy(update={"cost_usd": self._cost(generation)})

    def _cost(self, generation: Generation) -> float:
        # (u) Luma publishes no price for modify/reframe/upscale/audio: they cost like a generation of the same
        # model (5 s when the request names no duration); an upscale or audio job may carry no model, so $0.
        card = next((c for c in self.vendor.models if c.model == generation.model), None)
        if card is None:
            return 0.0
        seconds = float((getattr(generation.request, "duration", None) or "5s").rstrip("s"))
        return round(card.price.usd * (seconds if card.price.unit == "second" else 1.0), 4)

    def credits(self) -> float:
        """The account balance in USD (Luma reports USD cents)."""
        with self.calling("credits"):
            return self.client.credits.get().credit_balance / 100

    def delete(self, job: JobRef) -> None:
        """Remove the generation at Luma (there is no cancel; a running job keeps running)."""
        self.vendor.checks_job_id(job.job_id)
        with self.calling("delete"):
            self.client.generations.delete(job.job_id)


class LumaVideo(_Luma):
    capability = Capability.video

    def _request(self, spec: AssetSpec, card: ModelCard) -> tuple[str, dict[str, Any]]:
        if spec.operation is not None:
            return self._operation(spec, card)
        body: dict[str, Any] = {"model": card.model, "prompt": spec.prompt, "loop": spec.loop}
        if spec.aspect is not None:
            body["aspect_ratio"] = spec.aspect.value
        if spec.duration_s is not None:
            body["duration"] = f"{spec.duration_s:g}s"
        if resolution := _resolution(spec, card):
            body["resolution"] = resolution
        keyframes: dict[str, dict[str, str]] = {}
        for ref in spec.inputs:
            frame = FRAME_ROLES[ref.role]
            if frame in keyframes:
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"Luma video takes one start and one end keyframe; two inputs want {frame}",
                    provider=NAME,
                )
            keyframes[frame] = self._keyframe(ref)
        if keyframes:
            body["keyframes"] = keyframes
        return "video", body

    def _operation(self, spec: AssetSpec, card: ModelCard) -> tuple[str, dict[str, Any]]:
        source = self._source(spec)
        settings = card.settings(spec)
        if "resolution" in spec.options and spec.operation is not Operation.upscale:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"Luma's {spec.operation} keeps the source's resolution; only upscale takes one",
                provider=NAME,
            )
        if spec.operation in (Operation.upscale, Operation.add_audio):
            generation_id = _generation_id(source, self.vendor.checks_job_id)
            if generation_id is None:
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"Luma can {spec.operation} only its own generations: "
                    "the source input needs continues='luma:<generation id>'",
                    provider=NAME,
                )
            if spec.operation is Operation.upscale:
                resolution = settings.get("resolution") or UPSCALE_RESOLUTION
                return "upscale", {
                    "id": generation_id,
                    "generation_type": "upscale_video",
                    "resolution": resolution,
                }
            body = {"id": generation_id, "generation_type": "add_audio"}
            return "audio", body | ({"prompt": spec.prompt} if spec.prompt else {})
        # The aspect is checked first so a bad spec is refused before the source look-up.
        reframe = {"aspect_ratio": _target_aspect(spec)} if spec.operation is Operation.reframe else {}
        mode = settings["mode"]
        media = {"url": self._media_url(source)}
        prompt = {"prompt": spec.prompt} if spec.prompt else {}
        if spec.operation is Operation.modify:
            body = {"model": card.model, "generation_type": "modify_video", "media": media, "mode": mode}
            return "video.modify", body | prompt
        body = {"model": card.model, "generation_type": "reframe_video", "media": media}
        return "video.reframe", body | reframe | prompt


class LumaImage(_Luma):
    capability = Capability.image

    def _request(self, spec: AssetSpec, card: ModelCard) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": card.model, "prompt": spec.prompt, "format": "png"}
        if spec.operation is Operation.modify:
            # A new image drawn over the source (modify_image_ref) in the source's own frame: no aspect_ratio.
            # (u) Luma does not document which way the weight points; it is sent as given, else Luma's default.
            weight = {k: v for k, v in card.settings(spec).items() if k == "weight"}
            return "image", body | {"modify_image_ref": {"url": self._media_url(self._source(spec))} | weight}
        if spec.operation is not None:
            source, aspect = self._source(spec), _target_aspect(spec)
            media = {"url": self._media_url(source)}
            edit = {"model": card.model, "generation_type": "reframe_image", "media": media, "format": "png"}
            edit["aspect_ratio"] = aspect
            return "image.reframe", edit | ({"prompt": spec.prompt} if spec.prompt else {})
        if spec.aspect is not None:
            body["aspect_ratio"] = spec.aspect.value
        grouped: dict[str, list[InputRef]] = {field: [] for field in REFERENCE_FIELDS.values()}
        for ref in spec.inputs:
            grouped[REFERENCE_FIELDS[ref.role]].append(ref)
        for field, most in MAX_REFERENCES.items():
            if len(grouped[field]) > most:
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"Photon takes up to {most} images in {field}, got {len(grouped[field])}",
                    provider=NAME,
                )
        # Looked up only now: a luma:ID reference costs a GET for its link.
        urls = {field: [self._media_url(ref) for ref in refs] for field, refs in grouped.items()}
        for field in ("image_ref", "style_ref"):
            if urls[field]:
                body[field] = [{"url": url, "weight": IMAGE_REF_WEIGHT} for url in urls[field]]
        if urls["character_ref"]:
            body["character_ref"] = {"identity0": {"images": urls["character_ref"]}}
        return "image", body


#: Each request the adapter makes, by the SDK method that sends it (the client is the max_retries=0 one).
SENDERS: dict[str, Callable[[lumaai.LumaAI], Callable[..., Generation]]] = {
    "video": lambda client: client.generations.video.create,
    "video.modify": lambda client: client.generations.video.modify,
    "video.reframe": lambda client: client.generations.video.reframe,
    "upscale": lambda client: client.generations.upscale,
    "audio": lambda client: client.generations.audio,
    "image": lambda client: client.generations.image.create,
    "image.reframe": lambda client: client.generations.image.reframe,
}


def _target_aspect(spec: AssetSpec) -> str:
    """Reframe's required aspect_ratio: the spec must say which frame to outpaint to."""
    if spec.aspect is None:
        raise ProviderError(
            ErrorKind.invalid_input, "reframe needs spec.aspect, the target frame", provider=NAME
        )
    return spec.aspect.value


def _resolution(spec: AssetSpec, card: ModelCard) -> str | None:
    """The resolution option, else Luma's resolution name for the spec's short side; None lets Luma choose."""
    if resolution := card.settings(spec).get("resolution"):
        return str(resolution)
    if not (spec.width and spec.height):
        return None
    short = min(spec.width, spec.height)
    return next((name for name, px in (("540p", 540), ("720p", 720), ("1080p", 1080)) if short <= px), "4k")


def _public_url(ref: InputRef) -> str:
    if url := link(ref):
        return url
    if setting := REFERENCE_SETTINGS.get(ref.role):
        raise ProviderError(
            ErrorKind.invalid_input,
            f"Luma needs a public http(s) URL for the {ref.role} image, got {ref.uri}: set {setting} to a link",
            provider=NAME,
        )
    raise ProviderError(
        ErrorKind.invalid_input,
        f"Luma needs a public http(s) URL for the {ref.role} image, got {ref.uri}; "
        "store assets on S3 so inputs get presigned links",
        provider=NAME,
    )


def _generation_id(ref: InputRef, checks: Callable[[str], str]) -> str | None:
    """The Luma generation an input belongs to, from `continues` ("luma:<id>") or a luma-generation: URI, its
    shape checked before it reaches a URL."""
    if ref.continues and ref.continues.startswith(f"{NAME}:"):
        return checks(ref.continues.removeprefix(f"{NAME}:"))
    if ref.uri.startswith(GENERATION_SCHEME):
        return checks(ref.uri.removeprefix(GENERATION_SCHEME))
    return None
