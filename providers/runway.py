"""Runway (developer API) through the official `runwayml` SDK: video from a keyframe or text, images, and
work on an existing clip (spec.operation: modify through video_to_video; upscale and enhance_frame_rate
through video_upscale). The models, their ratios, options and prices are declared in providers/runway.toml.

Who retries what: the client has max_retries=0 (the base builds every SDK client so), because the SDK would
re-send a POST on a 5xx or a timeout with no idempotency key and Runway would run (and bill) the generation
twice; a transient ProviderError (generation_failed, rate_limited) goes up to the caller, where Prefect task
retries decide, and wait_for waits out a failing poll. The SDK's wait_for_task_output is not used: it polls
every 6 s ± 1.5 s, which can dip under Runway's 5 s minimum; wait_for polls on the card's schedule instead, and
a RUNNING task's `progress` (which `status` reports) tells it when to look next.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import runwayml
from runwayml.types import OrganizationRetrieveResponse

from cutroom.assets import AssetSpec, InputRef, Operation
from cutroom.capabilities import Capability
from cutroom.storage import path_of, sha256_file
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.inputs import data_uri, data_uri_size, link, local_media
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.sizes import asked_size, dimensions
from providers.vendor import VendorAdapter

NAME = "runway"
DATA_URI_LIMIT = 5 * 1024 * 1024
#: text_to_video takes fewer ratios than image_to_video for the same model (SDK 5.24 request types).
TEXT_TO_VIDEO_RATIOS = {
    "gen4.5": ("1280:720", "720:1280"),
    "veo3.1": ("1280:720", "720:1280", "1080:1920", "1920:1080"),
    "veo3.1_fast": ("1280:720", "720:1280", "1080:1920", "1920:1080"),
}
#: The endpoint each edit runs on (SDK 5.24: the models that take a bare `videoUri`; enhance_frame_rate
#: shares video_upscale but changes the frame rate, not the size).
ENDPOINTS = {
    Operation.modify: "video_to_video",
    Operation.upscale: "video_upscale",
    Operation.enhance_frame_rate: "video_upscale",
}
#: Input roles a Runway image sends as referenceImages.
REFERENCE_ROLES = ("reference", "style_reference", "character_reference")
MAX_REFERENCES = 3
#: URI schemes Runway takes as they are.
RUNWAY_SCHEMES = ("https://", "http://", "runway://")
#: How long an ephemeral upload is reused for the same file. (u) The SDK says only that uploads expire
#: "after a period of time"; an hour stays well inside it.
UPLOAD_REUSE_S = 3600.0


def failure_kind(code: str | None) -> ErrorKind:
    """A FAILED task's failureCode as an error kind; the most generic segment decides."""
    code = code or ""
    if code.startswith(("SAFETY.INPUT", "INPUT_PREPROCESSING.SAFETY")):
        return ErrorKind.moderation_input
    if code.startswith("SAFETY.OUTPUT"):
        return ErrorKind.moderation_output
    if code.startswith("ASSET.INVALID"):
        return ErrorKind.invalid_input
    return ErrorKind.generation_failed


def pick_ratio(spec: AssetSpec, ratios: tuple[str, ...], asked: str | None = None) -> str:
    """The ratio asked for (the `ratio` option), else the model ratio with the spec's aspect (its exact size
    when the model offers it)."""
    if asked is not None:
        if asked not in ratios:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"{spec.model} has no ratio {asked} here (has: {', '.join(ratios)})",
                provider=NAME,
            )
        return asked
    if (shape := asked_size(spec)) is None:
        return ratios[0]
    width, height = shape
    same_shape = [r for r in ratios if dimensions(r)[0] * height == dimensions(r)[1] * width]
    if not same_shape:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"{spec.model} has no ratio for {width}x{height} (has: {', '.join(ratios)})",
            provider=NAME,
        )
    return min(same_shape, key=lambda r: abs(dimensions(r)[0] - width))


def image_uri(ref: InputRef) -> str:
    """An image input as Runway takes it: a link as it is, a local image (sniffed) as a data URI under 5 MB."""
    if ref.uri.startswith(RUNWAY_SCHEMES):
        return ref.uri
    return _data_uri(ref, ("image",), "upload it instead")


def video_uri(ref: InputRef) -> str:
    """A source video as Runway takes it: its public link, else the local video as a data URI under 5 MB
    (SDK 5.24: videoUri is 'A HTTPS URL, Runway upload URI, or base64 data URI ... up to 5MB')."""
    if url := link(ref):
        return url
    if ref.uri.startswith("runway://"):
        return ref.uri
    return _data_uri(ref, ("video",), "Runway needs a public URL for it: set the input's url")


def _data_uri(ref: InputRef, expect: tuple[str, ...], hint: str) -> str:
    data, mime = local_media(ref, NAME, expect)
    if data_uri_size(len(data), mime) >= DATA_URI_LIMIT:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"the {ref.role} input is {data_uri_size(len(data), mime)} bytes as a data URI; Runway takes under "
            f"{DATA_URI_LIMIT} ({hint})",
            provider=NAME,
        )
    return data_uri(data, mime)


class _RunwayGenerator(VendorAdapter):
    """Create, status and result shared by the video and image generators."""

    vendor_name = NAME
    transport_errors = (runwayml.APIConnectionError,)
    unreadable_errors = (runwayml.APIResponseValidationError,)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        # The outputs a SUCCEEDED poll saw, so fetching needs no second GET.
        self._outputs: dict[str, list[str]] = {}
        # runway:// URIs of files already uploaded, by the file's sha256: a resubmit (after a 429) reuses them.
        self._uploads: dict[str, tuple[str, float]] = {}

    def make_client(self) -> runwayml.RunwayML:
        return runwayml.RunwayML(api_key=self.api_key, **self.sdk_settings())

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """Runway's `{"error": …, "issues": [{path, message}]}` as one line."""
        body = body if isinstance(body, dict) else {}
        message = str(body.get("error") or response.reason_phrase)
        issues = body.get("issues") or []
        details = "; ".join(
            f"{'.'.join(map(str, i.get('path', [])))}: {i.get('message')}"
            for i in issues
            if isinstance(i, dict)
        )
        return f"{message} ({details})" if details else message

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        if status == 400 and "enough credits" in detail:
            return ErrorKind.insufficient_credits
        if status == 403:  # "Model variant ... is not available": a model the organisation cannot use
            return ErrorKind.invalid_input
        return None

    def image_input(self, ref: InputRef) -> str:
        """image_uri, except that a local image too big for a data URI goes up through the SDK's
        uploads.create_ephemeral (POST /v1/uploads, then the file to its presigned URL) as a runway:// URI,
        once per file contents for UPLOAD_REUSE_S."""
        if ref.uri.startswith(RUNWAY_SCHEMES) or not ref.uri.startswith("file:"):
            return image_uri(ref)
        data, mime = local_media(ref, NAME, ("image",))
        if data_uri_size(len(data), mime) < DATA_URI_LIMIT:
            return data_uri(data, mime)
        path = path_of(ref.uri)
        digest = sha256_file(path)
        uploaded = self._uploads.get(digest)
        if uploaded is not None and time.monotonic() - uploaded[1] < UPLOAD_REUSE_S:
            return uploaded[0]
        uri = self.client.uploads.create_ephemeral(file=path).uri
        self._uploads[digest] = (uri, time.monotonic())
        return uri

    def body(self, spec: AssetSpec, card: ModelCard) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        endpoint, body = self.body(spec, card)
        return getattr(self.client, endpoint).create(**body).id

    def status(self, job: JobRef) -> JobStatus:
        task = self.client.tasks.retrieve(job.job_id)
        status = getattr(task, "status", None)
        if status in ("PENDING", "THROTTLED"):
            return JobStatus(state=JobState.PENDING)
        if status == "SUCCEEDED":
            self._outputs[job.job_id] = list(task.output)
            return JobStatus(state=JobState.SUCCEEDED, progress=1.0)
        if status == "FAILED":
            code = getattr(task, "failure_code", None)
            return JobStatus(
                state=JobState.FAILED,
                error=f"{code or 'FAILED'}: {getattr(task, 'failure', '')}",
                error_kind=failure_kind(code),
            )
        if status == "CANCELLED":
            return JobStatus(state=JobState.CANCELLED, error="CANCELLED")
        # RUNNING, or a state newer than this adapter: keep polling.
        return JobStatus(state=JobState.RUNNING, progress=getattr(task, "progress", None))

    def result(self, job: JobRef) -> Output:
        outputs = self._outputs.pop(job.job_id, None)
        if not outputs:
            task = self.client.tasks.retrieve(job.job_id)
            if getattr(task, "status", None) != "SUCCEEDED" or not task.output:
                raise ProviderError(ErrorKind.not_found, f"task {job.job_id} has no output", provider=NAME)
            outputs = list(task.output)
        return self.download(outputs[0])

    def cancel(self, job: JobRef) -> None:
        """Cancel a queued or running task (or delete a finished one)."""
        self.vendor.checks_job_id(job.job_id)
        with self.calling("cancel"):
            self.client.tasks.delete(job.job_id)

    def organization(self) -> OrganizationRetrieveResponse:
        """Credit balance, per-model tier limits and today's usage."""
        with self.calling("organization"):
            return self.client.organization.retrieve()


class RunwayVideo(_RunwayGenerator):
    """image_to_video when the spec has a keyframe/first_frame input, text_to_video otherwise; a spec with
    an operation works on its `source` input through video_to_video (modify) or video_upscale (upscale to
    the `resolution` option, enhance_frame_rate to spec.fps)."""

    capability = Capability.video

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        if spec.operation is not None and len(spec.inputs) > 1:
            # None of the edits has a field for another input (SDK 5.24; aleph2 has only timed `keyframes`):
            # dropping one would silently make something other than what the spec asks for.
            raise ProviderError(
                ErrorKind.invalid_input,
                f"{card.model} takes only its source input, not {[r.role for r in spec.inputs]}",
                provider=NAME,
            )
        if spec.operation is Operation.enhance_frame_rate and spec.fps is None:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"enhance_frame_rate needs spec.fps, the target (one of {', '.join(map(str, card.frame_rates))})",
                provider=NAME,
            )

    def body(self, spec: AssetSpec, card: ModelCard) -> tuple[str, dict[str, Any]]:
        settings = card.settings(spec)
        if spec.operation is not None:
            return self._operation_body(spec, spec.operation, card, settings)
        keyframe = next((r for r in spec.inputs if r.role in ("keyframe", "first_frame")), None)
        ratios = card.sizes if keyframe else TEXT_TO_VIDEO_RATIOS.get(card.model, card.sizes)
        ratio = pick_ratio(spec, ratios, settings.get("ratio"))
        body: dict[str, Any] = {"model": card.model, "ratio": ratio, "seed": spec.seed}
        if spec.prompt:
            body["prompt_text"] = spec.prompt[:1000]
        if spec.duration_s is not None:
            body["duration"] = int(spec.duration_s)
        if keyframe is None:
            return "text_to_video", body
        return "image_to_video", {**body, "prompt_image": self.image_input(keyframe)}

    def _operation_body(
        self, spec: AssetSpec, operation: Operation, card: ModelCard, settings: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """The SDK 5.24 params of aleph2 (video_to_video), or of magnific_video_upscaler_creative or
        enhance_frame_rate (video_upscale)."""
        source = next(r for r in spec.inputs if r.role == "source")
        endpoint = ENDPOINTS[operation]
        body: dict[str, Any] = {"model": card.model, "video_uri": video_uri(source)}
        if operation is Operation.enhance_frame_rate:
            return endpoint, {**body, "target_framerate": str(spec.fps)}
        if operation is Operation.upscale:
            return endpoint, body | (
                {"resolution": settings["resolution"]} if "resolution" in settings else {}
            )
        body["seed"] = spec.seed
        if spec.prompt:
            body["prompt_text"] = spec.prompt[:1000]
        if spec.aspect is not None or (spec.width and spec.height) or "ratio" in settings:
            body["ratio"] = pick_ratio(spec, card.sizes, settings.get("ratio"))
        return endpoint, body


class RunwayImage(_RunwayGenerator):
    """text_to_image; reference, style and character inputs all go out as referenceImages (at most 3): gen4
    takes any of them as a plain reference."""

    capability = Capability.image

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        if len(spec.inputs) > MAX_REFERENCES:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"runway images take up to {MAX_REFERENCES} reference images; got {len(spec.inputs)}",
                provider=NAME,
            )

    def body(self, spec: AssetSpec, card: ModelCard) -> tuple[str, dict[str, Any]]:
        ratio = pick_ratio(spec, card.sizes, card.settings(spec).get("ratio"))
        body: dict[str, Any] = {
            "model": card.model,
            "prompt_text": spec.prompt[:1000],
            "ratio": ratio,
            "seed": spec.seed,
        }
        references = [{"uri": self.image_input(r)} for r in spec.inputs if r.role in REFERENCE_ROLES]
        if references or card.model == "gen4_image_turbo":
            body["reference_images"] = references
        return "text_to_image", body
