"""Luma Dream Machine through the official `lumaai` SDK: Ray video (LumaVideo) and Photon images (LumaImage); and
ray-3.2, which Luma serves only on its Luma Agents API, through the official `luma-agents` SDK (LumaAgentsVideo).

Besides new generations: extend / reverse extend (keyframes frame0 / frame1 naming a generation), loop, Photon's
image, style and character references (input roles reference, style_reference, character_reference), and the
SDK's edits of a `source` input (spec.operation): video modify (option `mode`) and reframe, image modify
(modify_image_ref; option `weight`) and reframe, upscale (option `resolution`), add audio. The models, their
options and prices are declared in providers/luma.toml.

Who retries what: the client has `max_retries=0` (the base builds every SDK client so), because the Stainless
SDK would otherwise repeat a POST after a 5xx or timeout with no idempotency key — a second paid generation.
Transient failures surface as ProviderError(rate_limited | generation_failed); the Prefect task retries them
(re-attaching to the journaled job id), and wait_for waits out a failing poll.

Two APIs, one vendor: a user names `--model ray-3.2` on provider luma. The Agents API has its own base URL
(LUMA_AGENTS_BASE_URL, else https://agents.lumalabs.ai/v1), its own key (LUMA_AGENTS_API_KEY), its own schema and
states, its own simulator mount, and takes local frames inline (luma.toml's [apis.agents], the card's `api`);
LumaVideo hands every call for a model of that API (the SDK's `Model` enum) to a LumaAgentsVideo, whose
declaration is Luma's as that API reaches it (`Vendor.serving`). Its jobs carry {"api": "agents"} in their
journaled handle, so a process that takes one up again polls the right API. A clip chains only from a generation
of its own API: a Ray 2 shot after a ray-3.2 one starts from that clip's last frame.

Callbacks: with CUTROOM_CALLBACK_URL set (or `callback_url=`), every create carries it as Luma's callback_url
and the process's receiver (providers.callbacks) is started; Luma then posts each state change there, and
wait_for looks as soon as a post says the generation ended. Posts are unsigned: only their id and state are
read, as a prompt to poll.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, get_args

import luma_agents
import lumaai
from luma_agents.types import Generation as AgentsGeneration
from luma_agents.types import Model as AgentsModel
from lumaai.types import Generation

from cutroom.assets import AssetSpec, InputRef, Operation
from cutroom.capabilities import Capability
from providers import declarations
from providers.callbacks import CallbackNews
from providers.cards import ModelCard
from providers.declarations import Vendor
from providers.errors import ErrorKind, ProviderError
from providers.inputs import link, local_media
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.vendor import CalledBack, VendorAdapter

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

#: The models Luma serves on its Agents API only (luma-agents 0.5's `Model`).
AGENTS_MODELS = frozenset(get_args(AgentsModel))
#: What the journaled handle of an Agents job says.
AGENTS_HANDLE = {"api": "agents"}
#: luma.md B: an image sent inline may be up to 50 MB (413 beyond).
AGENTS_MAX_IMAGE_BYTES = 50 * 1024 * 1024
#: An Agents failure_code as an error kind (luma.md B, the SDK's GenerationFailureCode); unknown codes fail
#: transiently. (u) content_moderated does not say whether the input or the output was refused: the reason does.
AGENTS_FAILURES = {
    "content_moderated": ErrorKind.moderation_input,
    "budget_exhausted": ErrorKind.insufficient_credits,
    "image_too_large": ErrorKind.invalid_input,
    "unsupported_format": ErrorKind.invalid_input,
    "corrupt_input": ErrorKind.invalid_input,
    "invalid_request": ErrorKind.invalid_input,
}


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


class _Luma(CalledBack):
    """What both capabilities share: the client, states, callbacks, downloading."""

    vendor_name = NAME
    transport_errors = (lumaai.APIConnectionError,)
    unreadable_errors = (lumaai.APIResponseValidationError,)
    #: Luma posts each state change to the create's callback_url: wait_for wakes on it (CallbackWoken).
    callback_news = staticmethod(callback_news)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        # Generations seen on a poll, so fetch needs no second GET for the asset URL.
        self._seen: dict[str, Generation] = {}

    def make_client(self) -> lumaai.LumaAI:
        return lumaai.LumaAI(auth_token=self.api_key, **self.sdk_settings())

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
        if callback := self.listening():
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

    def _keyframe(self, ref: InputRef, chained: str | None) -> dict[str, str]:
        """The generation the clip chains from (extend, or reverse extend as frame1), or one a luma-generation:
        URI names; else a public image (a last frame of another API's generation among them)."""
        if chained and ref.continues == f"{NAME}:{chained}":
            generation_id = chained
        elif ref.uri.startswith(GENERATION_SCHEME):
            generation_id = ref.uri.removeprefix(GENERATION_SCHEME)
        else:
            return {"type": "image", "url": _public_url(ref)}
        return {"type": "generation", "id": self.vendor.checks_job_id(generation_id)}

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
    """Ray on Dream Machine; a model of the Agents API (ray-3.2) is handed to a LumaAgentsVideo."""

    capability = Capability.video

    def __init__(
        self, model: str | None = None, *, agents: LumaAgentsVideo | None = None, **options: Any
    ) -> None:
        super().__init__(model, **options)
        self._agents = agents

    @property
    def agents(self) -> LumaAgentsVideo:
        """The Agents API's adapter, built on first use on this one's clock and timeout (its own URL and key)."""
        if self._agents is None:
            self._agents = LumaAgentsVideo(time_scale=self.time_scale, timeout=self.timeout)
        return self._agents

    def _on_agents(self, spec: AssetSpec | None) -> bool:
        return spec is not None and (spec.model or self.model) in AGENTS_MODELS

    def check(self, spec: AssetSpec) -> ModelCard:
        return self.agents.check(spec) if self._on_agents(spec) else super().check(spec)

    def submit(self, spec: AssetSpec) -> JobRef:
        return self.agents.submit(spec) if self._on_agents(spec) else super().submit(spec)

    def poll(self, job: JobRef) -> JobStatus:
        return self.agents.poll(job) if job.handle == AGENTS_HANDLE else super().poll(job)

    def fetch(self, job: JobRef) -> Output:
        return self.agents.fetch(job) if job.handle == AGENTS_HANDLE else super().fetch(job)

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
        chained = card.chained_from(spec)
        for ref in spec.inputs:
            frame = FRAME_ROLES[ref.role]
            if frame in keyframes:
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"Luma video takes one start and one end keyframe; two inputs want {frame}",
                    provider=NAME,
                )
            keyframes[frame] = self._keyframe(ref, chained)
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


class LumaAgentsVideo(VendorAdapter):
    """ray-3.2 on the Luma Agents API: `POST /generations` (type video), `GET /generations/{id}`, the clip at
    `output[].url` (presigned, an hour). A start or end frame is a link, else the image inline (base64 `data`); a
    continuing shot extends the previous ray-3.2 generation itself (`start_frame.generation_id`)."""

    vendor_name = NAME
    capability = Capability.video
    transport_errors = (luma_agents.APIConnectionError,)
    unreadable_errors = (luma_agents.APIResponseValidationError,)

    def __init__(self, model: str | None = None, *, vendor: Vendor | None = None, **options: Any) -> None:
        model = model or "ray-3.2"
        super().__init__(model, vendor=vendor or declarations.vendor(NAME).serving(model), **options)
        self._seen: dict[str, AgentsGeneration] = {}

    def make_client(self) -> luma_agents.Luma:
        return luma_agents.Luma(auth_token=self.api_key, **self.sdk_settings())

    def handle_of(self, job_id: str) -> dict[str, str]:
        return dict(AGENTS_HANDLE)

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        roles = [ref.role for ref in spec.inputs]
        problems = []
        if card.model not in AGENTS_MODELS:
            problems.append("a clip on the Agents API (it is a Dream Machine model)")
        if sum(roles.count(r) for r in ("keyframe", "first_frame")) > 1:
            problems.append("two start frames")
        if spec.loop and spec.duration_s == 10.0:
            problems.append("a 10 s loop (Luma loops 5 s clips only)")
        if problems:
            raise ProviderError(
                ErrorKind.invalid_input, f"{card.model} cannot make {'; '.join(problems)}", provider=NAME
            )

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        video: dict[str, Any] = {}
        if spec.duration_s is not None:
            video["duration"] = f"{spec.duration_s:g}s"
        if resolution := _resolution(spec, card):
            video["resolution"] = "1080p" if resolution == "4k" else resolution
        if spec.loop:
            video["loop"] = True
        chained = card.chained_from(spec)
        for ref in spec.inputs:
            frame = "end_frame" if ref.role == "last_frame" else "start_frame"
            if chained and ref.continues == f"{NAME}:{chained}":
                video[frame] = {"generation_id": self.vendor.checks_job_id(chained)}
            else:
                video[frame] = self._image(ref)
        body: dict[str, Any] = {"model": card.model, "type": "video", "prompt": spec.prompt, "video": video}
        if spec.aspect is not None:
            body["aspect_ratio"] = spec.aspect.value
        return self.client.generations.create(**body).id

    def _image(self, ref: InputRef) -> dict[str, str]:
        """A frame as an ImageRef: its link, else the local image inline."""
        if url := link(ref):
            return {"url": url}
        data, mime = local_media(ref, NAME, ("image",), AGENTS_MAX_IMAGE_BYTES)
        encoded = base64.b64encode(data).decode("ascii")
        return {"data": encoded, "media_type": mime}

    def status(self, job: JobRef) -> JobStatus:
        generation = self.client.generations.get(job.job_id)
        if generation.state == "completed":
            self._seen[job.job_id] = generation
            return JobStatus(state=JobState.SUCCEEDED, progress=1.0)
        if generation.state == "failed":
            code = generation.failure_code or "generation_failed"
            reason = generation.failure_reason or code
            kind = AGENTS_FAILURES.get(code, ErrorKind.generation_failed)
            if kind is ErrorKind.moderation_input and "output" in reason.lower():
                kind = ErrorKind.moderation_output
            return JobStatus(state=JobState.FAILED, error=f"{code}: {reason}", error_kind=kind)
        if generation.state == "queued":
            return JobStatus(state=JobState.PENDING, progress=0.0)
        return JobStatus(state=JobState.RUNNING)

    def result(self, job: JobRef) -> Output:
        generation = self._seen.pop(job.job_id, None) or self.client.generations.get(job.job_id)
        url = next((o.url for o in generation.output or [] if o.type == "video"), None)
        if generation.state != "completed" or not url:
            raise ProviderError(
                ErrorKind.not_found,
                f"generation {job.job_id} has no video (state {generation.state})",
                provider=NAME,
            )
        return self.download(url)

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        if status == 402:
            return ErrorKind.insufficient_credits
        if status == 413:
            return ErrorKind.invalid_input
        return None


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
