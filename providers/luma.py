"""Luma Dream Machine through the official `lumaai` SDK: Ray video (LumaVideo) and Photon images (LumaImage).

Besides new generations: extend / reverse extend (keyframes frame0 / frame1 naming a generation), loop, Photon's
image, style and character references (input roles reference, style_reference, character_reference), and the
SDK's edits of a `source` input (spec.operation): video modify (spec.strength is its mode) and reframe, image
modify (modify_image_ref; spec.strength is its weight) and reframe, upscale, add audio.

Who retries what: this adapter never resends a create. Creates go through a client with `max_retries=0`,
because the Stainless SDK would otherwise repeat a POST after a 5xx or timeout with no idempotency key — a
second paid generation. Transient failures surface as ProviderError(rate_limited | generation_failed); the
Prefect task retries them via its retry_condition on `ErrorKind.transient` (re-attaching to the journaled job
id), and `run_job` waits out a 429 on a poll. Reads (get, list, credits) keep the SDK's own retries: they are
idempotent and free.

Callbacks: with CUTROOM_CALLBACK_URL set (or `callback_url=`), every create carries it as Luma's callback_url
and the process's receiver (providers.callbacks) is started; Luma then posts each state change there, and
wait_for looks as soon as a post says the generation ended. Posts are unsigned: only their id and state are
read, as a prompt to poll.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import httpx
import lumaai
from lumaai.types import Generation
from lumaai.types.generations import VideoCreateParams, VideoModifyParams
from PIL import Image, UnidentifiedImageError

from cutroom.assets import AssetSpec, InputRef, Operation
from cutroom.media import MediaError, probe
from providers import callbacks, simulation
from providers.base import (
    Capability,
    ErrorKind,
    JobRef,
    JobState,
    JobStatus,
    Output,
    PollSchedule,
    ProviderError,
    download_output,
    retry_after,
)
from providers.callbacks import CallbackNews
from providers.catalogue import ModelCard
from providers.simulation import simulator_url

NAME = "luma"
#: Where the simulator mounts Luma; CUTROOM_SIMULATOR_URL + this is a drop-in base URL.
SIMULATOR_PREFIX = "/luma/dream-machine/v1"
SIMULATOR_KEY = "luma-simulator"
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
DEFAULT_TIMEOUT_S = 60.0
#: A Generation's states (luma.md); the last two are final.
STATES = ("queued", "dreaming", "completed", "failed")
ENDED_STATES = ("completed", "failed")


def _literals(hint: Any) -> tuple[str, ...]:
    """The string values of a Literal, also when it sits inside a Union (like `Literal[...] | str`)."""
    if get_origin(hint) is Literal:
        return tuple(get_args(hint))
    if get_origin(hint) is Union:
        return tuple(v for arg in get_args(hint) for v in _literals(arg))
    return ()


_VIDEO_HINTS = get_type_hints(VideoCreateParams)
#: Taken from the installed SDK's enums, so the cards follow the SDK's own contract.
ASPECTS = _literals(_VIDEO_HINTS["aspect_ratio"])
RESOLUTIONS = _literals(_VIDEO_HINTS["resolution"])
DURATIONS_S = tuple(float(d.rstrip("s")) for d in _literals(_VIDEO_HINTS["duration"]))
#: Video modify's modes from the SDK's enum: adhere_* keep closest to the source, reimagine_* stray furthest.
MODIFY_MODES = _literals(get_type_hints(VideoModifyParams)["mode"])
#: The SDK requires a mode; without spec.strength, flex keeps the source's motion but restyles the look.
MODIFY_MODE = "flex_1"
#: An upscale without a target size asks for full HD, the step up from Ray's usual 720p.
UPSCALE_RESOLUTION = "1080p"
#: The SDK's edits by capability (1.21: video modify/reframe, upscale, audio; image modify, which is
#: modify_image_ref on the image endpoint, and reframe).
OPERATIONS = {
    Capability.video: (Operation.modify, Operation.reframe, Operation.upscale, Operation.add_audio),
    Capability.image: (Operation.modify, Operation.reframe),
}

_RAY = {
    "durations_s": DURATIONS_S,
    "aspects": ASPECTS,
    "resolutions": RESOLUTIONS,
    "min_poll_interval_s": 3.0,
    "operations": OPERATIONS[Capability.video],
}
_PHOTON = {"aspects": ASPECTS, "min_poll_interval_s": 2.0, "operations": OPERATIONS[Capability.image]}
MODELS: dict[str, ModelCard] = {
    card.model: card
    for card in (
        ModelCard(
            provider=NAME,
            model="ray-2",
            capability=Capability.video,
            summary="Ray 2: Luma's quality text/image-to-video; ~3 min for 5 s 720p.",
            expected_latency_s=180.0,
            usd_per_second=0.08,  # (u) third-party aggregator figure, luma.md
            **_RAY,
        ),
        ModelCard(
            provider=NAME,
            model="ray-flash-2",
            capability=Capability.video,
            summary="Ray Flash 2: faster, cheaper Ray 2.",
            expected_latency_s=60.0,  # (u) no measured figure; assumed ~3x faster than ray-2
            usd_per_second=0.027,  # (u) assumed ~1/3 of ray-2; not in luma.md
            **_RAY,
        ),
        ModelCard(
            provider=NAME,
            model="photon-1",
            capability=Capability.image,
            summary="Photon 1: Luma's image model.",
            expected_latency_s=20.0,
            usd_per_image=0.32,  # (u) $0.32/MP (luma.md, aggregator) at ~1 MP per image
            **_PHOTON,
        ),
        ModelCard(
            provider=NAME,
            model="photon-flash-1",
            capability=Capability.image,
            summary="Photon Flash 1: faster, cheaper Photon.",
            expected_latency_s=10.0,  # (u) assumed half of photon-1
            usd_per_image=0.08,  # (u) assumed ~1/4 of photon-1; not in luma.md
            **_PHOTON,
        ),
    )
}


def schedule_for(card: ModelCard, time_scale: float = 1.0) -> PollSchedule:
    """Poll near the model's latency; time_scale matches the simulator's latency_scale in tests."""
    return PollSchedule(
        expected_s=card.expected_latency_s * time_scale,
        min_interval_s=card.min_poll_interval_s * time_scale,
        max_interval_s=15.0 * time_scale,
        timeout_s=max(20 * card.expected_latency_s, 600.0) * time_scale,
    )


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


def make_client(
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    http_client: httpx.Client | None = None,
    timeout: float | None = None,
) -> lumaai.LumaAI:
    """A Dream Machine client: the simulator if CUTROOM_SIMULATOR_URL is set, else LUMAAI_BASE_URL or Luma."""
    simulator = simulator_url()
    if base_url is None and simulator:
        base_url = f"{simulator.rstrip('/')}{SIMULATOR_PREFIX}"
        api_key = api_key or SIMULATOR_KEY
    api_key = api_key or os.environ.get("LUMAAI_API_KEY")
    if not api_key:
        raise ProviderError(
            ErrorKind.not_configured,
            "no Luma API key: set LUMAAI_API_KEY (a Dream Machine key, luma-…), "
            "or CUTROOM_SIMULATOR_URL to use the local simulator",
            provider=NAME,
        )
    return lumaai.LumaAI(
        auth_token=api_key,
        base_url=base_url or os.environ.get("LUMAAI_BASE_URL"),
        http_client=http_client,
        timeout=timeout or lumaai.DEFAULT_TIMEOUT,  # the SDK's 60 s with a 5 s connect limit
    )


class _Luma:
    """What both capabilities share: the client, error mapping, polling, downloading."""

    name = NAME
    capability: Capability
    default_model: str
    #: Luma posts each state change to the create's callback_url: wait_for wakes on it (CallbackWoken).
    callback_news = staticmethod(callback_news)

    def __init__(
        self,
        model: str | None = None,
        *,
        client: lumaai.LumaAI | None = None,
        http_client: httpx.Client | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        time_scale: float | None = None,
        callback_url: str | None = None,
    ) -> None:
        self.model = model or self.default_model
        scale = simulation.time_scale() if time_scale is None else time_scale
        self.schedule = schedule_for(self._card(self.model), scale)
        self._client = client
        self._client_options = {"base_url": base_url, "api_key": api_key, "timeout": timeout}
        self._http = http_client
        self._timeout = timeout or DEFAULT_TIMEOUT_S
        self._callback_url = callback_url
        # Generations seen on a poll, so fetch needs no second GET for the asset URL.
        self._seen: dict[str, Generation] = {}

    @property
    def callback_url(self) -> str | None:
        """Where Luma posts news of our generations: the constructor's, else CUTROOM_CALLBACK_URL."""
        return self._callback_url or os.environ.get(callbacks.URL_ENV) or None

    @property
    def client(self) -> lumaai.LumaAI:
        # Built on first use so an unconfigured adapter can be listed; missing keys fail at the first call.
        if self._client is None:
            self._client = make_client(http_client=self._http, **self._client_options)
        return self._client

    def _card(self, model: str) -> ModelCard:
        card = MODELS.get(model)
        if card is None or card.capability is not self.capability:
            known = ", ".join(m for m, c in MODELS.items() if c.capability is self.capability)
            raise ProviderError(
                ErrorKind.invalid_input,
                f"unknown {self.capability} model {model!r} (known: {known})",
                provider=NAME,
            )
        return card

    def _spec_card(self, spec: AssetSpec) -> ModelCard:
        return self._card(spec.model or self.model)

    def estimate(self, spec: AssetSpec) -> float:
        return self._spec_card(spec).price(spec)

    def submit(self, spec: AssetSpec) -> JobRef:
        card = self._spec_card(spec)
        card.check(spec)
        if spec.strength is not None and spec.operation is not Operation.modify:
            raise ProviderError(
                ErrorKind.invalid_input, "Luma takes a strength only for operation modify", provider=NAME
            )
        endpoint, body = self._request(spec, card)
        if callback := self.callback_url:
            callbacks.listen(callback, NAME, callback_news)  # up before Luma can post the first news
            body["callback_url"] = callback
        creator = self.client.with_options(max_retries=0)  # a retried create is a second paid generation
        with _mapped_errors("create"):
            generation = SENDERS[endpoint](creator)(**body)
        if not generation.id:
            raise ProviderError(ErrorKind.generation_failed, "create answered without an id", provider=NAME)
        return JobRef(provider=NAME, job_id=generation.id, spec_key=spec.key())

    def _request(self, spec: AssetSpec, card: ModelCard) -> tuple[str, dict[str, Any]]:
        """The SENDERS key to call and its keyword arguments; refuses what Luma cannot do before any request."""
        raise NotImplementedError

    def _check_operation(self, spec: AssetSpec) -> InputRef:
        """The spec's one `source` input, once its operation is known to exist for this capability."""
        offered = OPERATIONS[self.capability]
        if spec.operation not in offered:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"Luma {self.capability} cannot {spec.operation} "
                f"(offers: {', '.join(op.value for op in offered)})",
                provider=NAME,
            )
        sources = [ref for ref in spec.inputs if ref.role == "source"]
        if len(sources) != 1 or len(spec.inputs) != 1:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"{spec.operation} takes exactly one input, with role source; got {[r.role for r in spec.inputs]}",
                provider=NAME,
            )
        return sources[0]

    def _media_url(self, ref: InputRef) -> str:
        """A public link to the source; for a Luma generation without one, its output URL (a free read)."""
        generation_id = _generation_id(ref)
        if ref.url or ref.uri.startswith(("http://", "https://")) or generation_id is None:
            return _public_url(ref)
        with _mapped_errors("get source"):
            source = self.client.generations.get(generation_id)
        url = source.assets and (source.assets.video or source.assets.image)
        if source.state != "completed" or not url:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"source generation {generation_id} has no output yet (state {source.state})",
                provider=NAME,
            )
        return url

    def poll(self, job: JobRef) -> JobStatus:
        """Map Luma's state; a moderation failure raises its own kind so run_job reports it, not a retry."""
        with _mapped_errors("poll"):
            generation = self.client.generations.get(job.job_id)
        state = generation.state
        if state == "completed":
            self._seen[job.job_id] = generation
            return JobStatus(state=JobState.SUCCEEDED, progress=1.0)
        if state == "failed":
            reason = generation.failure_reason or "failed without a reason"
            if "moderation" in reason.lower():
                # luma.md: the observed text ("Advanced moderation failed") was about the input image.
                kind = (
                    ErrorKind.moderation_output if "output" in reason.lower() else ErrorKind.moderation_input
                )
                raise ProviderError(kind, reason, provider=NAME)
            return JobStatus(state=JobState.FAILED, error=reason)
        if state == "queued":
            return JobStatus(state=JobState.PENDING, progress=0.0)
        return JobStatus(state=JobState.RUNNING)

    def fetch(self, job: JobRef) -> Output:
        """Download the output at once (vendor URLs expire); 403/404 means the link is gone."""
        generation = self._seen.pop(job.job_id, None)
        if generation is None:
            with _mapped_errors("get"):
                generation = self.client.generations.get(job.job_id)
        assets = generation.assets
        url = assets and (assets.video if generation.generation_type == "video" else assets.image)
        if generation.state != "completed" or not url:
            raise ProviderError(
                ErrorKind.not_found,
                f"generation {job.job_id} has no output (state {generation.state})",
                provider=NAME,
            )
        data, mime = download_output(url, NAME, self._http, self._timeout)
        return _describe(data, mime, self._cost(generation)).model_copy(update={"source_url": url})

    def _cost(self, generation: Generation) -> float:
        # (u) Luma publishes no price for modify/reframe/upscale/audio: they cost like a generation of the same
        # model (5 s when the request names no duration); an upscale or audio job may carry no model, so $0.
        card = MODELS.get(generation.model or "")
        if card is None:
            return 0.0
        if card.capability is Capability.image:
            return card.usd_per_image
        duration = getattr(generation.request, "duration", None) or "5s"
        return round(card.usd_per_second * float(duration.rstrip("s")), 4)

    def credits(self) -> float:
        """The account balance in USD (Luma reports USD cents)."""
        with _mapped_errors("credits"):
            return self.client.credits.get().credit_balance / 100

    def delete(self, job: JobRef) -> None:
        """Remove the generation at Luma (there is no cancel; a running job keeps running)."""
        with _mapped_errors("delete"):
            self.client.generations.delete(job.job_id)


class LumaVideo(_Luma):
    capability = Capability.video
    default_model = "ray-2"

    def _request(self, spec: AssetSpec, card: ModelCard) -> tuple[str, dict[str, Any]]:
        if spec.operation is not None:
            return self._operation(spec, card)
        body: dict[str, Any] = {"model": card.model, "prompt": spec.prompt, "loop": spec.loop}
        if spec.aspect is not None:
            body["aspect_ratio"] = spec.aspect.value
        if spec.duration_s is not None:
            body["duration"] = f"{spec.duration_s:g}s"
        if resolution := _resolution(spec):
            body["resolution"] = resolution
        if other := [ref.role for ref in spec.inputs if ref.role not in FRAME_ROLES]:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"Luma video takes only first_frame/keyframe/last_frame inputs, not {other}"
                + (" (a source input needs an operation)" if "source" in other else ""),
                provider=NAME,
            )
        keyframes: dict[str, dict[str, str]] = {}
        for ref in spec.inputs:
            frame = FRAME_ROLES[ref.role]
            if frame in keyframes:
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"Luma video takes one start and one end keyframe; two inputs want {frame}",
                    provider=NAME,
                )
            keyframes[frame] = _keyframe(ref)
        if keyframes:
            body["keyframes"] = keyframes
        return "video", body

    def _operation(self, spec: AssetSpec, card: ModelCard) -> tuple[str, dict[str, Any]]:
        source = self._check_operation(spec)
        if spec.resolution is not None and spec.operation is not Operation.upscale:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"Luma's {spec.operation} keeps the source's resolution; only upscale takes one",
                provider=NAME,
            )
        if spec.operation in (Operation.upscale, Operation.add_audio):
            generation_id = _generation_id(source)
            if generation_id is None:
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"Luma can {spec.operation} only its own generations: "
                    "the source input needs continues='luma:<generation id>'",
                    provider=NAME,
                )
            if spec.operation is Operation.upscale:
                resolution = _resolution(spec) or UPSCALE_RESOLUTION
                return "upscale", {
                    "id": generation_id,
                    "generation_type": "upscale_video",
                    "resolution": resolution,
                }
            body = {"id": generation_id, "generation_type": "add_audio"}
            return "audio", body | ({"prompt": spec.prompt} if spec.prompt else {})
        # The aspect and mode are checked first so a bad spec is refused before the source look-up.
        reframe = {"aspect_ratio": _target_aspect(spec)} if spec.operation is Operation.reframe else {}
        mode = _modify_mode(spec)
        media = {"url": self._media_url(source)}
        prompt = {"prompt": spec.prompt} if spec.prompt else {}
        if spec.operation is Operation.modify:
            body = {"model": card.model, "generation_type": "modify_video", "media": media, "mode": mode}
            return "video.modify", body | prompt
        body = {"model": card.model, "generation_type": "reframe_video", "media": media}
        return "video.reframe", body | reframe | prompt


class LumaImage(_Luma):
    capability = Capability.image
    default_model = "photon-1"

    def _request(self, spec: AssetSpec, card: ModelCard) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": card.model, "prompt": spec.prompt, "format": "png"}
        if spec.operation is Operation.modify:
            # A new image drawn over the source (modify_image_ref) in the source's own frame: no aspect_ratio.
            source = self._check_operation(spec)
            weight = _modify_weight(spec)
            return "image", body | {"modify_image_ref": {"url": self._media_url(source)} | weight}
        if spec.operation is not None:
            source, aspect = self._check_operation(spec), _target_aspect(spec)
            media = {"url": self._media_url(source)}
            edit = {"model": card.model, "generation_type": "reframe_image", "media": media, "format": "png"}
            edit["aspect_ratio"] = aspect
            return "image.reframe", edit | ({"prompt": spec.prompt} if spec.prompt else {})
        if spec.aspect is not None:
            body["aspect_ratio"] = spec.aspect.value
        grouped: dict[str, list[InputRef]] = {field: [] for field in REFERENCE_FIELDS.values()}
        for ref in spec.inputs:
            if ref.role not in REFERENCE_FIELDS:
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"Luma images take only {', '.join(REFERENCE_FIELDS)} inputs, not {ref.role}",
                    provider=NAME,
                )
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


def _modify_mode(spec: AssetSpec) -> str:
    """Video modify's mode: spec.strength, one of the SDK's modes, else MODIFY_MODE."""
    if spec.strength is None:
        return MODIFY_MODE
    if spec.strength not in MODIFY_MODES:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"Luma video modify takes a strength of {', '.join(MODIFY_MODES)}, not {spec.strength!r}",
            provider=NAME,
        )
    return str(spec.strength)


def _modify_weight(spec: AssetSpec) -> dict[str, float]:
    """Image modify's weight from spec.strength, 0 to 1; none sent without one, so Luma's default applies.
    (u) Luma does not document which way the weight points; it is sent as given."""
    if spec.strength is None:
        return {}
    if isinstance(spec.strength, str) or not 0 <= spec.strength <= 1:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"Luma image modify takes a strength (its weight) from 0 to 1, not {spec.strength!r}",
            provider=NAME,
        )
    return {"weight": spec.strength}


def _resolution(spec: AssetSpec) -> str | None:
    """spec.resolution, else Luma's resolution name for the spec's short side; None lets Luma choose."""
    if spec.resolution is not None:
        return spec.resolution
    if not (spec.width and spec.height):
        return None
    short = min(spec.width, spec.height)
    return next((name for name, px in (("540p", 540), ("720p", 720), ("1080p", 1080)) if short <= px), "4k")


def _generation_id(ref: InputRef) -> str | None:
    """The Luma generation an input belongs to, from `continues` ("luma:<id>") or a luma-generation: URI."""
    if ref.continues and ref.continues.startswith(f"{NAME}:"):
        return ref.continues.removeprefix(f"{NAME}:")
    if ref.uri.startswith(GENERATION_SCHEME):
        return ref.uri.removeprefix(GENERATION_SCHEME)
    return None


def _keyframe(ref: InputRef) -> dict[str, str]:
    """An input from a Luma generation chains from it (extend, or reverse extend as frame1); else a public image."""
    if generation_id := _generation_id(ref):
        return {"type": "generation", "id": generation_id}
    return {"type": "image", "url": _public_url(ref)}


def _public_url(ref: InputRef) -> str:
    if ref.url:
        return ref.url
    if ref.uri.startswith(("http://", "https://")):
        return ref.uri
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


def _describe(data: bytes, mime: str, cost: float) -> Output:
    """An Output with the size and length read from the media itself."""
    if mime.startswith("image/"):
        try:
            with Image.open(io.BytesIO(data)) as image:
                return Output(data=data, mime=mime, width=image.width, height=image.height, cost_usd=cost)
        except (UnidentifiedImageError, OSError) as exc:
            raise ProviderError(
                ErrorKind.generation_failed, f"output is not an image: {exc}", provider=NAME
            ) from exc
    with tempfile.TemporaryDirectory(prefix="cutroom-luma-") as tmp:
        path = Path(tmp) / "output.mp4"
        path.write_bytes(data)
        try:
            info = probe(path)
        except MediaError as exc:
            raise ProviderError(
                ErrorKind.generation_failed, f"output is not a video: {exc}", provider=NAME
            ) from exc
    return Output(
        data=data, mime=mime, width=info.width, height=info.height, duration_s=info.duration_s, cost_usd=cost
    )


@contextmanager
def _mapped_errors(what: str) -> Iterator[None]:
    """Turn every SDK failure into the provider taxonomy."""
    try:
        yield
    except lumaai.APIStatusError as exc:
        raise _status_error(exc, what) from exc
    except lumaai.APITimeoutError as exc:
        raise ProviderError(ErrorKind.generation_failed, f"{what} timed out", provider=NAME) from exc
    except lumaai.APIConnectionError as exc:
        raise ProviderError(
            ErrorKind.generation_failed, f"{what}: connection failed: {exc}", provider=NAME
        ) from exc
    except (lumaai.APIResponseValidationError, ValueError) as exc:
        # A truncated or non-JSON body: the call may have worked, but we cannot read it; worth another try.
        raise ProviderError(
            ErrorKind.generation_failed, f"{what}: malformed response: {exc}", provider=NAME
        ) from exc


def _status_error(exc: lumaai.APIStatusError, what: str) -> ProviderError:
    status = exc.status_code
    detail = _detail(exc.body) or exc.message
    message = f"{what}: HTTP {status}: {detail}"
    lowered = detail.lower()
    if status == 429:
        return ProviderError(
            ErrorKind.rate_limited, message, provider=NAME, retry_after=retry_after(exc.response)
        )
    if status == 402 or (400 <= status < 500 and ("credit" in lowered or "balance" in lowered)):
        return ProviderError(ErrorKind.insufficient_credits, message, provider=NAME)
    if status in (401, 403):
        return ProviderError(ErrorKind.auth, message, provider=NAME)
    if status == 404:
        return ProviderError(ErrorKind.not_found, message, provider=NAME)
    if status in (400, 422):
        kind = ErrorKind.moderation_input if "moderation" in lowered else ErrorKind.invalid_input
        return ProviderError(kind, message, provider=NAME)
    # 408, 409 and 5xx are what the SDK itself would retry: passing faults.
    return ProviderError(ErrorKind.generation_failed, message, provider=NAME)


def _detail(body: object) -> str:
    """Luma's `{"detail": "…"}` (or FastAPI's list of validation errors) as one line."""
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):
        return "; ".join(
            str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail
        )
    return "" if detail is None else str(detail)
