"""Google's Gemini API: images (Gemini image models through the official `google-genai` SDK, Imagen 4 through
httpx) and Veo video.

GoogleImage branches on the model's family per request: the registry maps a capability to one adapter class, and
a spec may name any of the vendor's models, so the branch is per spec anyway; the client, key, base URL and error
mapping are shared with GoogleVideo (_Google).

- Gemini image models (gemini-*-image*): `models.generate_content` with response modalities IMAGE and
  image_config {aspect_ratio, image_size}; the prompt, then each input image as an inline part after a line
  saying what it is for. The image comes back inline, as png or jpeg (Gemini 3 Pro varies, and its label has
  been seen to lie: the bytes are sniffed). A 200 is not yet a success: a refused prompt is an answer with
  promptFeedback.blockReason (moderation_input), a refused picture a candidate whose finishReason is
  IMAGE_SAFETY and the like and that has no image (moderation_output).
- Imagen 4: `POST /v1beta/models/{model}:predict` through the base's httpx client, because google-genai 3.6.1's
  generate_images runs only against Vertex AI (ValueError before any request on the Gemini API). sampleCount is
  always 1: Imagen's default is 4 images, billed as four. A refused prompt is a 400 (moderation_input); filtered
  images are dropped from the answer (moderation_output).
- Veo (GoogleVideo): `POST /v1beta/models/{model}:predictLongRunning` through httpx, because google-genai
  3.6.1's generate_videos, like generate_images, runs only against Vertex AI (ValueError before any request on the
  Gemini API); the body is what earlier SDKs sent there (`_GenerateVideosParameters_to_mldev`): instances[0] with
  the prompt and images as {bytesBase64Encoded, mimeType} (image, lastFrame, referenceImages), parameters
  {aspectRatio, durationSeconds, resolution, negativePrompt}. The answer is an operation, `models/{model}/
  operations/{id}`: that name is the job id. It is polled with the SDK's `operations.get` (which does run on the
  Gemini API) until `done`; a done operation has an `error`, or a response with the video's file uri, or one
  whose raiMediaFilteredCount / raiMediaFilteredReasons say why there is none (moderation). The file is fetched
  at once as the SDK's files.download asks for it (the file id from the uri, under our own base URL, with the
  key: a Google link never receives the key from here), and the signed link it redirects to goes through the
  base's download, which needs no key. A continuing shot starts from the previous clip's last frame: Veo's own
  extension (`video`) answers the whole video, input and all, 7 s longer and at 720p only, not a clip of the
  card's lengths, so the cards do not chain.

SDK settings: API version v1beta (the SDK's default is v1; every Google sample and Imagen use v1beta), retries
off (`HttpRetryOptions(attempts=1)`: a retried call is a second paid image), the timeout in milliseconds (the
SDK's unit; None would mean no timeout at all), and the base's `httpx.Client` as the SDK's transport: errors
then carry an httpx response the base maps (the SDK's default backend is httpx2, whose exceptions and responses
are not httpx's), and the SDK never closes a client it was handed, so a collected genai.Client cannot close it
mid-call. Rate limits: Google sends no Retry-After; the delay is a RetryInfo in the error body, read here.

Transient failures leave as ProviderError(rate_limited | generation_failed); the Prefect task retries them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import re
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image, UnidentifiedImageError

from cutroom.assets import AssetSpec, InputRef
from cutroom.capabilities import Capability
from cutroom.sniff import sniff
from providers.cards import ModelCard
from providers.errors import ErrorKind, JobFailed, ProviderError
from providers.http import GONE_STATUSES
from providers.inputs import check_local_inputs, local_media, upload_media
from providers.polling import PollSchedule
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.sizes import asked_size, nearest_ratio, ratio_of, strays
from providers.vendor import DETAIL_CHARS, VendorAdapter

try:  # google-genai's default transport, used by a genai.Client handed in ready-made
    import httpx2

    HTTPX2_ERRORS: tuple[type[BaseException], ...] = (httpx2.TransportError,)
except ImportError:  # pragma: no cover - httpx2 is an optional extra of google-genai
    HTTPX2_ERRORS = ()

NAME = "google"
API_VERSION = "v1beta"
IMAGEN = "imagen-"
#: The largest gap between the asked shape and the vendor's nearest ratio.
ASPECT_TOLERANCE = 0.08
#: Image types Gemini takes inline (ai.google.dev); other images go as PNG.
GEMINI_INPUT_MIME = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
#: Reference images per request (Gemini 3's documented limit; (u) for 2.5 Flash Image).
MAX_REFERENCES = 14
#: The Gemini API refuses requests over 20 MB; inline images travel as base64, leave room for the rest.
MAX_INLINE_BYTES = 19 * 1024 * 1024
#: (u) Prompt caps: Imagen reads up to 480 tokens (~4 characters each); Gemini's context is far larger.
IMAGEN_PROMPT_CHARS = 1900
GEMINI_PROMPT_CHARS = 20_000
#: What each input is for, said to the model before the image itself.
ROLE_LINES = {
    "source": "the image to edit",
    "reference": "a reference image",
    "style_reference": "a style reference: match its look, palette and technique",
    "character_reference": "a character reference: keep this character's identity",
}
#: Imagen parameters by option name.
IMAGEN_OPTIONS = {
    "image_size": "sampleImageSize",
    "person_generation": "personGeneration",
    "safety_setting": "safetySetting",
}
#: A candidate's finishReason that means the picture was refused (the rest of the no-image reasons, like
#: IMAGE_OTHER or NO_IMAGE, are failures a new attempt may get past).
OUTPUT_REFUSALS = frozenset(
    {"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "SAFETY", "PROHIBITED_CONTENT",
     "BLOCKLIST", "SPII", "RECITATION", "MODEL_ARMOR"}
)  # fmt: skip
#: Words of Imagen's 400 for a refused prompt ("…The prompt could not be submitted… Responsible AI practices…").
PROMPT_REFUSALS = ("could not be submitted", "responsible ai", "sensitive words")
#: ErrorInfo reasons of a key Google does not take (it answers 400 INVALID_ARGUMENT, not 401).
KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})


#: Calls that look up something a create made: a 404 there means it is gone, not a model Google lacks.
LOOKUPS = ("poll", "fetch")
#: Input roles a Veo clip starts from.
START_ROLES = ("keyframe", "first_frame")
#: (u) Image types Veo takes inline; other images go as PNG.
VEO_INPUT_MIME = ("image/png", "image/jpeg", "image/webp")
#: (u) Veo 3.1's limit on reference images ("asset" references; up to 3 in Google's docs).
MAX_VIDEO_REFERENCES = 3
#: (u) Veo makes 1080p clips, and clips from reference images, only 8 s long.
LONG_ONLY_S = 8.0
#: (u) Veo reads ~1024 tokens of prompt.
VEO_PROMPT_CHARS = 4000
#: The one reference type the Gemini API takes for Veo (u).
REFERENCE_TYPE = "asset"
#: Words of a RAI reason that say the prompt or an input image was refused (the rest: the clip was withheld).
INPUT_REFUSAL_WORDS = ("prompt", "input", "could not be submitted")
#: google.rpc codes of a failed operation that mean the request, not Google, was at fault.
INVALID_CODES = {3: ErrorKind.invalid_input, 9: ErrorKind.invalid_input}
#: A file id in a video's uri (what the SDK's t_file_name keeps of `…/files/{id}:download?alt=media`).
FILE_ID = re.compile(r"(?:^|/)files/([a-z0-9]+)")


def aspect_ratio(spec: AssetSpec, aspects: tuple[str, ...]) -> str | None:
    """The model's ratio for the spec's shape (its aspect, else its width and height); None leaves it to Google
    (1:1, or an input image's shape)."""
    if spec.aspect is not None and spec.aspect.value in aspects:
        return spec.aspect.value
    if (shape := asked_size(spec, aspect_first=True)) is None:
        return None
    width, height = shape
    asked = width / height
    nearest = nearest_ratio(asked, aspects)
    if strays(ratio_of(nearest), asked, ASPECT_TOLERANCE):
        raise ProviderError(
            ErrorKind.invalid_input,
            f"{spec.model} makes no shape near {width}x{height} (its ratios: {', '.join(aspects)})",
            provider=NAME,
        )
    return nearest


def retry_delay(body: Any) -> float | None:
    """Seconds from a Google error body's RetryInfo (`"retryDelay": "0.25s"`): Google sends no Retry-After."""
    for detail in _details(body):
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            try:
                return float(str(detail.get("retryDelay", "")).removesuffix("s"))
            except ValueError:
                return None
    return None


def _details(body: Any) -> list[dict[str, Any]]:
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def reference_image(ref: InputRef) -> types.Part:
    """A local input image as an inline part, its type read from its bytes; a type Gemini does not take is
    converted to PNG."""
    if not ref.uri.startswith("file:"):
        raise ProviderError(
            ErrorKind.invalid_input,
            f"Google takes the {ref.role} input inline from a local file, not a link ({ref.uri[:60]})",
            provider=NAME,
        )
    data, mime = local_media(ref, NAME, ("image",))
    if mime not in GEMINI_INPUT_MIME:
        data, mime = _as_png(data, ref), "image/png"
    return types.Part.from_bytes(data=data, mime_type=mime)


def _as_png(data: bytes, ref: InputRef) -> bytes:
    try:
        with Image.open(io.BytesIO(data)) as image:
            buffer = io.BytesIO()
            image.convert("RGBA" if "A" in image.getbands() else "RGB").save(buffer, format="PNG")
    except (UnidentifiedImageError, OSError) as exc:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"the {ref.role} input is an image Google cannot read: {exc}",
            provider=NAME,
        ) from None
    return buffer.getvalue()


class _Google(VendorAdapter):
    """What Google's image and video adapters share: the SDK client on our own httpx client, the key header, and
    Google's ways of saying no."""

    vendor_name = NAME
    transport_errors = HTTPX2_ERRORS
    unreadable_errors = (binascii.Error,)

    def make_client(self) -> genai.Client:
        return genai.Client(
            vertexai=False,  # GOOGLE_GENAI_USE_VERTEXAI in the environment would change every path
            api_key=self.api_key,
            http_options=types.HttpOptions(
                base_url=self.base_url,
                api_version=API_VERSION,
                timeout=int(self.timeout * 1000),  # milliseconds
                retry_options=types.HttpRetryOptions(attempts=1),  # a retried call is a second paid image
                httpx_client=self.http,
            ),
        )

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.api_key}

    # -- errors ---------------------------------------------------------------------------------------------------

    def map_error(self, exc: Exception, what: str) -> ProviderError | None:
        """An SDK error whose response is not httpx's (a genai.Client handed in on its httpx2 default) is read
        from the body the SDK kept."""
        response = getattr(exc, "response", None)
        if isinstance(exc, genai_errors.APIError) and not isinstance(response, httpx.Response):
            body = exc.details if isinstance(exc.details, dict) else {"error": {"message": exc.message}}
            request = httpx.Request("POST", self.base_url)
            return self.from_response(httpx.Response(exc.code or 500, json=body, request=request), what)
        return super().map_error(exc, what)

    def from_response(self, response: httpx.Response, what: str) -> ProviderError:
        if response.status_code == 404 and what in LOOKUPS:
            # Not a model Google does not serve: an operation or file it no longer keeps (u: 2 days).
            body = None
            with contextlib.suppress(ValueError):  # a 404 that is no JSON says it in its text
                body = response.json()
            detail = " ".join(super().error_detail(body, response).split())
            return ProviderError(
                ErrorKind.not_found, f"{what}: HTTP 404: {detail[:DETAIL_CHARS]}", provider=NAME
            )
        error = super().from_response(response, what)
        if error.kind is ErrorKind.rate_limited and error.retry_after is None:
            with contextlib.suppress(ValueError):  # a body that is no JSON has no RetryInfo either
                error.retry_after = retry_delay(response.json())
        return error

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        detail = super().error_detail(body, response)
        if response.status_code == 404:
            detail += (
                " (Google does not serve this model here: it is retired or renamed; see `cutroom models`)"
            )
        return detail

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        details = _details(body)
        error = body.get("error") if isinstance(body, dict) else None
        # The whole message: `detail` is cut short, and a quota's "limit: 0" comes late in it.
        text = str(error.get("message") or detail if isinstance(error, dict) else detail).lower()
        if any(d.get("reason") in KEY_REASONS for d in details) or "api key not valid" in text:
            return ErrorKind.auth
        if status == 429:
            # RESOURCE_EXHAUSTED is a per-minute limit (wait RetryInfo's delay) or the day's quota, or a project
            # without billing, whose image quota is 0: neither comes back within a run.
            quotas = [str(v.get("quotaId", "")) for d in details for v in d.get("violations") or []
                      if isinstance(v, dict)]  # fmt: skip
            if "limit: 0" in text or any("PerDay" in q for q in quotas):
                return ErrorKind.insufficient_credits
            return ErrorKind.rate_limited
        if "billed users" in text or "enable billing" in text or "billing account" in text:
            return ErrorKind.insufficient_credits
        if status == 400 and any(words in text for words in PROMPT_REFUSALS):
            return ErrorKind.moderation_input
        if status == 400 and "location is not supported" in text:
            return ErrorKind.auth  # the key's project cannot use the API from here
        if status == 404:
            return ErrorKind.invalid_input  # a model Google does not serve (retired, renamed, wrong method)
        return None


class GoogleImage(_Google):
    capability = Capability.image
    sync = True

    def schedule_of(self, model: str | None = None) -> PollSchedule:
        """Look at once: the image was made inside submit (the base aims a first look at the card's latency,
        which for a sync call is that long a wait after the image is already here)."""
        return super().schedule_of(model).model_copy(update={"expected_s": 0.0, "min_interval_s": 0.0})

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        if not spec.prompt.strip():
            raise ProviderError(ErrorKind.invalid_input, f"{card.model} needs a prompt", provider=NAME)
        if len(spec.inputs) > MAX_REFERENCES:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"{card.model} takes up to {MAX_REFERENCES} input images; got {len(spec.inputs)}",
                provider=NAME,
            )

    def generate(self, spec: AssetSpec, card: ModelCard) -> Output:
        settings = card.settings(spec)
        if card.model.startswith(IMAGEN):
            data, mime = self._predict(spec, card, settings)
        else:
            data, mime = self._generate_content(spec, card, settings)
        # Google reports no price: the card's, for the image size actually asked (its default included).
        cost = card.price_of(spec.model_copy(update={"options": settings}))
        return self.described(data, sniff(data[:64]) or mime, cost_usd=cost)

    # -- Gemini image models ---------------------------------------------------------------------------------------

    def _generate_content(
        self, spec: AssetSpec, card: ModelCard, settings: dict[str, Any]
    ) -> tuple[bytes, str]:
        parts = [types.Part.from_text(text=spec.prompt[:GEMINI_PROMPT_CHARS])]
        inline = 0
        for number, ref in enumerate(spec.inputs, 1):
            image = reference_image(ref)
            inline += 4 * -(-len(image.inline_data.data) // 3)  # type: ignore[union-attr, arg-type]
            line = f"Image {number} is {ROLE_LINES.get(ref.role, ROLE_LINES['reference'])}."
            parts += [types.Part.from_text(text=line), image]
        if inline > MAX_INLINE_BYTES:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"the input images come to {inline / 1e6:.1f} MB as sent; Google takes up to 20 MB a request",
                provider=NAME,
            )
        # Only the cards that take a size name one; without a ratio Google keeps an input image's shape.
        image_config = types.ImageConfig(
            aspect_ratio=aspect_ratio(spec, card.aspects), image_size=settings.get("image_size")
        )
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            image_config=image_config if image_config.aspect_ratio or image_config.image_size else None,
            seed=spec.seed,
        )
        response = self.client.models.generate_content(
            model=card.model, contents=[types.Content(role="user", parts=parts)], config=config
        )
        return self._image_of(response)

    def _image_of(self, response: types.GenerateContentResponse) -> tuple[bytes, str]:
        """The answer's image, or why there is none."""
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            reason = _name(feedback.block_reason)
            raise JobFailed(
                ErrorKind.moderation_input,
                f"Google refused the prompt or an input image ({reason}); change it and ask again",
                provider=NAME,
            )
        candidate = (response.candidates or [None])[0]
        parts = (candidate.content.parts if candidate and candidate.content else None) or []
        for part in parts:
            blob = part.inline_data
            if blob is not None and blob.data and not part.thought:
                return blob.data, blob.mime_type or "image/png"
        reason = _name(candidate.finish_reason) if candidate and candidate.finish_reason else "no candidate"
        said = " ".join(p.text for p in parts if p.text and not p.thought)[:200]
        if reason in OUTPUT_REFUSALS:
            raise JobFailed(
                ErrorKind.moderation_output, f"Google withheld the image it made ({reason})", provider=NAME
            )
        raise JobFailed(
            ErrorKind.generation_failed,
            f"Google answered without an image ({reason}){': ' + said if said else ''}",
            provider=NAME,
        )

    # -- Imagen ---------------------------------------------------------------------------------------------------

    def _predict(self, spec: AssetSpec, card: ModelCard, settings: dict[str, Any]) -> tuple[bytes, str]:
        # sampleCount 1 always: Imagen's default, 4, bills four images. includeRaiReason says why one was dropped.
        parameters: dict[str, Any] = {"sampleCount": 1, "includeRaiReason": True}
        if aspect := aspect_ratio(spec, card.aspects):
            parameters["aspectRatio"] = aspect
        parameters |= {field: settings[name] for name, field in IMAGEN_OPTIONS.items() if name in settings}
        body = {"instances": [{"prompt": spec.prompt[:IMAGEN_PROMPT_CHARS]}], "parameters": parameters}
        path = f"/{API_VERSION}/models/{card.model}:predict"
        answer = self.request("POST", path, json=body, timeout=self.timeout).json()
        if not isinstance(answer, dict):
            raise ProviderError(ErrorKind.generation_failed, "predict: unreadable answer", provider=NAME)
        # Entries without bytes are filter reports or the prompt's safety attributes, never images.
        predictions = [p for p in answer.get("predictions") or [] if isinstance(p, dict)]
        for prediction in predictions:
            if encoded := prediction.get("bytesBase64Encoded"):
                return base64.b64decode(encoded, validate=True), prediction.get("mimeType") or "image/png"
        why = next((p["raiFilteredReason"] for p in predictions if p.get("raiFilteredReason")), "")
        raise JobFailed(
            ErrorKind.moderation_output,
            f"Imagen's safety filters dropped the image{': ' + str(why)[:200] if why else ''}",
            provider=NAME,
        )


class GoogleVideo(_Google):
    """Veo: one :predictLongRunning operation per clip, polled to done, its video downloaded at once."""

    capability = Capability.video

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        # The video uri a done poll saw, by operation name, so fetching needs no second look.
        self._videos: dict[str, str] = {}

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        roles = [ref.role for ref in spec.inputs]
        starts = sum(role in START_ROLES for role in roles)
        references = roles.count("reference")
        problem = None
        if starts > 1 or roles.count("last_frame") > 1:
            problem = "Veo starts from one image and ends on one; got " + ", ".join(roles)
        elif "last_frame" in roles and not starts:
            problem = "Veo ends on a last frame only when the clip also starts from an image"
        elif references and (starts or "last_frame" in roles):
            problem = "Veo takes reference images or start and end frames, not both"
        elif references > MAX_VIDEO_REFERENCES:
            problem = f"Veo takes up to {MAX_VIDEO_REFERENCES} reference images; got {references}"
        elif not spec.prompt.strip() and not starts:
            problem = f"{card.model} needs a prompt, or an image to start from"
        elif spec.duration_s not in (None, LONG_ONLY_S) and (
            references or card.settings(spec).get("resolution", "720p") != "720p"
        ):
            problem = f"Veo makes 1080p clips and clips from reference images {LONG_ONLY_S:g} s long only"
        if problem:
            raise ProviderError(ErrorKind.invalid_input, problem, provider=NAME)
        check_local_inputs(spec, NAME)

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        settings = card.settings(spec)
        instance: dict[str, Any] = {"prompt": spec.prompt[:VEO_PROMPT_CHARS]} if spec.prompt.strip() else {}
        references = []
        for ref in spec.inputs:
            if ref.role in START_ROLES:
                instance["image"] = self._image(ref)
            elif ref.role == "last_frame":
                instance["lastFrame"] = self._image(ref)
            else:
                references.append({"image": self._image(ref), "referenceType": REFERENCE_TYPE})
        if references:
            instance["referenceImages"] = references
        if len(json.dumps(instance)) > MAX_INLINE_BYTES:
            raise ProviderError(
                ErrorKind.invalid_input,
                "the input images come to more than 20 MB as sent; Google takes up to 20 MB a request",
                provider=NAME,
            )
        parameters: dict[str, Any] = {}
        if aspect := aspect_ratio(spec, card.aspects):
            parameters["aspectRatio"] = aspect
        if spec.duration_s is not None:
            parameters["durationSeconds"] = int(spec.duration_s)
        if "resolution" in settings:  # only the cards that make more than one
            parameters["resolution"] = settings["resolution"]
        if "negative_prompt" in settings:
            parameters["negativePrompt"] = settings["negative_prompt"]
        body = {"instances": [instance], "parameters": parameters}
        path = f"/{API_VERSION}/models/{card.model}:predictLongRunning"
        answer = self.request("POST", path, json=body, timeout=self.timeout).json()
        name = answer.get("name") if isinstance(answer, dict) else None
        return name if isinstance(name, str) else ""

    def _image(self, ref: InputRef) -> dict[str, str]:
        """An input image as Veo takes it, inline: the local file (or the link's bytes), PNG unless Veo reads
        its type."""
        data, mime = upload_media(ref, NAME, ("image",), MAX_INLINE_BYTES)
        if mime not in VEO_INPUT_MIME:
            data, mime = _as_png(data, ref), "image/png"
        return {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"), "mimeType": mime}

    def status(self, job: JobRef) -> JobStatus:
        operation = self.client.operations.get(types.GenerateVideosOperation(name=job.job_id))
        if not operation.done:
            return JobStatus(state=JobState.RUNNING)
        if operation.error:
            code, message = operation.error.get("code"), str(operation.error.get("message") or "")
            return JobStatus(state=JobState.FAILED, error=f"Veo failed ({code}): {message[:DETAIL_CHARS]}",
                             error_kind=operation_error_kind(code, message))  # fmt: skip
        answer = operation.response
        videos = [
            v.video.uri
            for v in (answer.generated_videos if answer else None) or []
            if v.video and v.video.uri
        ]
        if videos:
            self._videos[job.job_id] = videos[0]
            return JobStatus(state=JobState.SUCCEEDED, progress=1.0)
        reasons = "; ".join(answer.rai_media_filtered_reasons or []) if answer else ""
        if answer and (answer.rai_media_filtered_count or reasons):
            refused = any(words in reasons.lower() for words in INPUT_REFUSAL_WORDS)
            kind = ErrorKind.moderation_input if refused else ErrorKind.moderation_output
            said = "refused the prompt or an input image" if refused else "withheld the clip it made"
            return JobStatus(
                state=JobState.FAILED, error=f"Veo {said}: {reasons[:DETAIL_CHARS]}", error_kind=kind
            )
        return JobStatus(state=JobState.FAILED, error="Veo finished without a video",
                         error_kind=ErrorKind.generation_failed)  # fmt: skip

    def result(self, job: JobRef) -> Output:
        uri = self._videos.pop(job.job_id, None)
        if uri is None:
            state = self.status(job).state
            if state is not JobState.SUCCEEDED:
                raise ProviderError(
                    ErrorKind.not_found, f"operation {job.job_id} has no video ({state.value})", provider=NAME
                )
            uri = self._videos.pop(job.job_id)
        found = FILE_ID.search(uri)
        if found is None:
            raise ProviderError(ErrorKind.generation_failed, "Veo named its video in a way Cutroom cannot "
                                f"read: {uri[:80]}", provider=NAME)  # fmt: skip
        # As the SDK's files.download asks: our base URL, the key in its header, never to another host.
        response = self.http.get(
            f"{self.base_url}/{API_VERSION}/files/{found.group(1)}:download",
            params={"alt": "media"},
            headers=self.auth_headers(),
            timeout=self.timeout,
        )
        if response.is_redirect:
            return self.download(response.headers["location"])  # a signed link: no key goes with it
        if response.status_code in GONE_STATUSES:
            raise ProviderError(ErrorKind.not_found, f"the video of {job.job_id} is gone (HTTP "
                                f"{response.status_code})", provider=NAME)  # fmt: skip
        response.raise_for_status()
        return self.described(
            response.content, response.headers.get("content-type", "video/mp4").split(";")[0]
        )


def operation_error_kind(code: Any, message: str) -> ErrorKind:
    """A failed operation's google.rpc code as an error kind; a refusal in words is moderation."""
    if any(words in message.lower() for words in PROMPT_REFUSALS):
        return ErrorKind.moderation_input
    return (
        INVALID_CODES.get(code, ErrorKind.generation_failed)
        if isinstance(code, int)
        else ErrorKind.generation_failed
    )


def _name(value: Any) -> str:
    """An SDK enum's wire name (an unknown value stays a plain string)."""
    return str(getattr(value, "value", value))
