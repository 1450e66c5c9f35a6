"""Runway (developer API) through the official `runwayml` SDK: video from a keyframe or text, images, and
work on an existing clip (spec.operation: modify through video_to_video; upscale and enhance_frame_rate
through video_upscale).

Who retries what: creates go out with max_retries=0, because the SDK would re-send a POST on a 5xx or a
timeout with no idempotency key and Runway would run (and bill) the generation twice; a transient
ProviderError (generation_failed, rate_limited) goes up to the caller, where Prefect task retries decide.
Reads (task polls, organization) are idempotent, so the SDK's own 2 retries stay on for them, and
run_job waits out a 429 on a poll. The SDK's wait_for_task_output is not used: it polls every 6 s ± 1.5 s,
which can dip under Runway's 5 s minimum; run_job polls on `schedule` instead, and a RUNNING task's
`progress` (which poll reports) tells it when to look next.
"""

from __future__ import annotations

import base64
import math
import mimetypes
import os
import time
from pathlib import Path
from typing import Any, get_args, get_type_hints

import httpx
import runwayml
from runwayml.types import OrganizationRetrieveResponse
from runwayml.types.video_upscale_create_params import EnhanceFrameRate, MagnificVideoUpscalerCreative

from cutroom.assets import AssetSpec, InputRef, Operation
from cutroom.channels import SIZES
from cutroom.storage import path_of, sha256_file
from providers import simulation
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
from providers.catalogue import ModelCard
from providers.simulation import simulator_url

NAME = "runway"
KEY_ENV = "RUNWAYML_API_SECRET"
#: Shaped like a real key (key_ + 128 hex) so the simulator's key check is the vendor's.
SIMULATOR_KEY = "key_" + "0" * 128
MIN_POLL_INTERVAL_S = 5.0
#: A running task reports its progress, from which the look after it predicts the end, so the first look
#: comes early: at 0.3 x the card's latency, it lands (for gen4_turbo's 45 s) at 13.5 s, at least the 5 s
#: minimum before runway.md's fastest 30 s jobs end (a job that ends inside that minimum after a look is
#: seen up to 5 s late) and past the first tenth of the run, where a task is still PENDING without progress.
FIRST_LOOK_SHARE = 0.3
#: The longest wait between looks, even when progress puts the end farther off: a progress that misleads
#: then costs at most 20 s, and a 30–60 s job gets two or three looks.
MAX_POLL_INTERVAL_S = 20.0
DATA_URI_LIMIT = 5 * 1024 * 1024
USD_PER_CREDIT = 0.01

GEN4_RATIOS = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")
IMAGE_RATIOS = (
    "1024:1024", "1080:1080", "1168:880", "1360:768", "1440:1080", "1080:1440", "1808:768", "1920:1080",
    "1080:1920", "2112:912", "1280:720", "720:1280", "720:720", "960:720", "720:960", "1680:720",
)  # fmt: skip
#: text_to_video takes fewer ratios than image_to_video for the same model (SDK 5.24 request types).
TEXT_TO_VIDEO_RATIOS = {"gen4.5": ("1280:720", "720:1280"), "veo3.1": VEO_RATIOS, "veo3.1_fast": VEO_RATIOS}
#: Models that need a prompt image (no text_to_video variant in the SDK).
IMAGE_ONLY = {"gen4_turbo"}
#: aleph2's `ratio` is a bare str in SDK 5.24; these are gen4_aleph's values (runway.md, SDK 3.20): unverified.
V2V_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672", "848:480", "640:480")
#: The model and endpoint each operation runs on (SDK 5.24: the video_to_video/video_upscale models that
#: take a bare `videoUri`; enhance_frame_rate shares video_upscale but changes the frame rate, not the size).
OPERATIONS: dict[Operation, tuple[str, str]] = {
    Operation.modify: ("aleph2", "video_to_video"),
    Operation.upscale: ("magnific_video_upscaler_creative", "video_upscale"),
    Operation.enhance_frame_rate: ("enhance_frame_rate", "video_upscale"),
}
#: Which operation a model is for; models not listed make something new (no operation).
OPERATION_OF = {model: op for op, (model, _) in OPERATIONS.items()}
#: From the SDK's own enums: magnific's `resolution` (the target; 2k when not sent) and enhance_frame_rate's
#: `targetFramerate`. spec.fps is a whole number, so the NTSC rates (23_98, 29_97, 59_94) are not offered.
UPSCALE_RESOLUTIONS = get_args(get_type_hints(MagnificVideoUpscalerCreative)["resolution"])
FRAME_RATES = tuple(
    int(r) for r in get_args(get_type_hints(EnhanceFrameRate)["target_framerate"]) if r.isdigit()
)
#: Input roles a Runway image sends as referenceImages.
REFERENCE_ROLES = ("reference", "style_reference", "character_reference")
#: How long an ephemeral upload is reused for the same file. (u) The SDK says only that uploads expire
#: "after a period of time"; an hour stays well inside it.
UPLOAD_REUSE_S = 3600.0


def _aspects(ratios: tuple[str, ...]) -> tuple[str, ...]:
    reduced = []
    for ratio in ratios:
        w, h = (int(x) for x in ratio.split(":"))
        g = math.gcd(w, h)
        reduced.append(f"{w // g}:{h // g}")
    return tuple(dict.fromkeys(reduced))


def _card(model: str, capability: Capability, ratios: tuple[str, ...], **fields: Any) -> ModelCard:
    return ModelCard(
        provider=NAME,
        model=model,
        capability=capability,
        aspects=_aspects(ratios),
        resolutions=ratios,
        min_poll_interval_s=MIN_POLL_INTERVAL_S,
        **fields,
    )


_SECONDS_2_10 = tuple(float(s) for s in range(2, 11))
_VEO_SECONDS = (4.0, 6.0, 8.0)
#: Prices are credits x $0.01 from third-party rate tables (runway.md): unverified.
MODELS: dict[str, ModelCard] = {
    "gen4_turbo": _card(
        "gen4_turbo", Capability.video, GEN4_RATIOS, durations_s=_SECONDS_2_10, expected_latency_s=45.0,
        usd_per_second=0.05, summary="image→video, 5 credits/s (price unverified)",
    ),
    "gen4.5": _card(
        "gen4.5", Capability.video, GEN4_RATIOS, durations_s=_SECONDS_2_10, expected_latency_s=60.0,
        usd_per_second=0.12, summary="image/text→video, 12 credits/s (price unverified)",
    ),
    "veo3.1": _card(
        "veo3.1", Capability.video, VEO_RATIOS, durations_s=_VEO_SECONDS, expected_latency_s=90.0,
        usd_per_second=0.40, summary="image/text→video, 20-40 credits/s (price unverified, upper bound)",
    ),
    "veo3.1_fast": _card(
        "veo3.1_fast", Capability.video, VEO_RATIOS, durations_s=_VEO_SECONDS, expected_latency_s=45.0,
        usd_per_second=0.15, summary="image/text→video, 10-15 credits/s (price unverified, upper bound)",
    ),
    "gen4_image": _card(
        "gen4_image", Capability.image, IMAGE_RATIOS, expected_latency_s=15.0, usd_per_image=0.08,
        summary="text→image, 5 (720p) / 8 (1080p) credits (price unverified, upper bound)",
    ),
    "gen4_image_turbo": _card(
        "gen4_image_turbo", Capability.image, IMAGE_RATIOS, expected_latency_s=10.0, usd_per_image=0.02,
        summary="text→image with 1-3 reference images, 2 credits (price unverified)",
    ),
    "aleph2": _card(
        "aleph2", Capability.video, V2V_RATIOS, expected_latency_s=60.0, usd_per_second=0.15,
        operations=(Operation.modify,), summary="video→video (modify), 15 credits/s as gen4_aleph (price unverified)",
    ),
    # Any input shape: the output keeps the source's framing at a higher resolution.
    "magnific_video_upscaler_creative": ModelCard(
        provider=NAME, model="magnific_video_upscaler_creative", capability=Capability.video,
        resolutions=UPSCALE_RESOLUTIONS, expected_latency_s=60.0, min_poll_interval_s=MIN_POLL_INTERVAL_S,
        usd_per_second=0.02, operations=(Operation.upscale,),
        summary="video upscale to 720p/1k/2k/4k (2k by default), 2 credits/s as upscale_v1 (price unverified)",
    ),
    # The source's size and length at a new frame rate (spec.fps).
    "enhance_frame_rate": ModelCard(
        provider=NAME, model="enhance_frame_rate", capability=Capability.video, frame_rates=FRAME_RATES,
        expected_latency_s=30.0, min_poll_interval_s=MIN_POLL_INTERVAL_S, usd_per_second=0.02,
        operations=(Operation.enhance_frame_rate,),
        summary="frame interpolation to a new fps, 2 credits/s as upscale_v1 (price and latency unverified)",
    ),
}  # fmt: skip


def schedule_for(model: str, time_scale: float = 1.0) -> PollSchedule:
    """How to poll a model: a first look early enough to read progress, never faster than Runway's 5 s per
    task (all scaled with the simulator's latency_scale when running against it)."""
    return PollSchedule(
        expected_s=MODELS[model].expected_latency_s * time_scale,
        min_interval_s=MIN_POLL_INTERVAL_S * time_scale,
        max_interval_s=MAX_POLL_INTERVAL_S * time_scale,
        first_share=FIRST_LOOK_SHARE,
    )


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


def make_client(api_key: str | None = None, *, timeout: float = 60.0) -> runwayml.RunwayML:
    """The SDK client for the simulator (CUTROOM_SIMULATOR_URL) or for Runway (RUNWAYML_BASE_URL / default)."""
    simulator = simulator_url()
    if simulator:
        return runwayml.RunwayML(
            api_key=SIMULATOR_KEY, base_url=f"{simulator.rstrip('/')}/runway", timeout=timeout
        )
    key = api_key or os.environ.get(KEY_ENV)
    if not key:
        raise ProviderError(ErrorKind.not_configured, f"set {KEY_ENV}", provider=NAME)
    return runwayml.RunwayML(api_key=key, timeout=timeout)


def map_error(exc: Exception) -> ProviderError:
    """An SDK exception as the shared error taxonomy."""
    if isinstance(exc, runwayml.AuthenticationError):
        return ProviderError(ErrorKind.auth, _message(exc), provider=NAME)
    if isinstance(exc, runwayml.RateLimitError):
        return ProviderError(
            ErrorKind.rate_limited, _message(exc), provider=NAME, retry_after=retry_after(exc.response)
        )
    if isinstance(exc, runwayml.BadRequestError):
        message = _message(exc)
        kind = ErrorKind.insufficient_credits if "enough credits" in message else ErrorKind.invalid_input
        return ProviderError(kind, message, provider=NAME)
    if isinstance(exc, runwayml.NotFoundError):
        return ProviderError(ErrorKind.not_found, _message(exc), provider=NAME)
    if isinstance(exc, runwayml.PermissionDeniedError):
        # Runway answers 403 "Model variant ... is not available" for a model the org cannot use.
        return ProviderError(ErrorKind.invalid_input, _message(exc), provider=NAME)
    if isinstance(exc, runwayml.APIStatusError) and exc.status_code < 500:
        return ProviderError(ErrorKind.invalid_input, _message(exc), provider=NAME)
    # 5xx, connection errors, timeouts and unparseable answers may all pass on their own.
    return ProviderError(ErrorKind.generation_failed, f"{type(exc).__name__}: {exc}", provider=NAME)


def _message(exc: runwayml.APIError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    message = str(body.get("error") or exc.message)
    issues = body.get("issues") or []
    details = "; ".join(f"{'.'.join(map(str, i.get('path', [])))}: {i.get('message')}" for i in issues)
    return f"{message} ({details})" if details else message


def pick_ratio(spec: AssetSpec, ratios: tuple[str, ...]) -> str:
    """The ratio asked for as spec.resolution, else the model ratio with the spec's aspect (its exact size
    when the model offers it)."""
    if spec.resolution is not None:
        if spec.resolution not in ratios:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"{spec.model} has no ratio {spec.resolution} here (has: {', '.join(ratios)})",
                provider=NAME,
            )
        return spec.resolution
    if spec.width and spec.height:
        width, height = spec.width, spec.height
    elif spec.aspect is not None:
        width, height = SIZES[spec.aspect]
    else:
        return ratios[0]
    same_shape = [r for r in ratios if _shape(r)[0] * height == _shape(r)[1] * width]
    if not same_shape:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"{spec.model} has no ratio for {width}x{height} (has: {', '.join(ratios)})",
            provider=NAME,
        )
    return min(same_shape, key=lambda r: abs(_shape(r)[0] - width))


def _shape(ratio: str) -> tuple[int, int]:
    w, h = ratio.split(":")
    return int(w), int(h)


def image_uri(ref: InputRef) -> str:
    """An input as Runway takes it: https URLs as they are, local files as a base64 data URI under 5 MB."""
    if ref.uri.startswith(("http://", "https://", "runway://", "data:")):
        return ref.uri
    return _data_uri(ref, "image/png", "upload it instead")


def video_uri(ref: InputRef) -> str:
    """A source video as Runway takes it: its public link, else the local file as a data URI under 5 MB
    (SDK 5.24: videoUri is 'A HTTPS URL, Runway upload URI, or base64 data URI ... up to 5MB')."""
    for candidate in (ref.url, ref.uri):
        if candidate and candidate.startswith(("http://", "https://", "runway://", "data:")):
            return candidate
    return _data_uri(ref, "video/mp4", "Runway needs a public URL for it: set the input's url")


def _data_uri_length(path: Path) -> int:
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return len(f"data:{mime};base64,") + 4 * math.ceil(path.stat().st_size / 3)


def _data_uri(ref: InputRef, default_mime: str, hint: str) -> str:
    try:
        path = path_of(ref.uri)
        data = path.read_bytes()
    except (ValueError, OSError) as exc:
        raise ProviderError(ErrorKind.invalid_input, f"cannot read {ref.uri}: {exc}", provider=NAME) from exc
    mime = mimetypes.guess_type(path.name)[0] or default_mime
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    if len(uri) >= DATA_URI_LIMIT:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"{ref.uri} is {len(uri)} bytes as a data URI; Runway takes under {DATA_URI_LIMIT} ({hint})",
            provider=NAME,
        )
    return uri


class _RunwayGenerator:
    """Submit, poll and fetch shared by the video and image generators."""

    name = NAME
    capability: Capability

    def __init__(
        self,
        model: str,
        client: runwayml.RunwayML | None = None,
        *,
        http: httpx.Client | None = None,
        time_scale: float | None = None,
    ) -> None:
        if model not in MODELS or MODELS[model].capability is not self.capability:
            raise ValueError(f"runway has no {self.capability} model {model!r}")
        self.model = model
        self.schedule = schedule_for(model, simulation.time_scale() if time_scale is None else time_scale)
        self._client = client
        self._http = http
        self._jobs: dict[str, tuple[AssetSpec, list[str]]] = {}
        # runway:// URIs of files already uploaded, by the file's sha256: a resubmit (after a 429) reuses them.
        self._uploads: dict[str, tuple[str, float]] = {}

    @property
    def client(self) -> runwayml.RunwayML:
        """Built on first use, so a missing key surfaces as not_configured from the first call."""
        if self._client is None:
            self._client = make_client()
        return self._client

    def image_input(self, ref: InputRef) -> str:
        """image_uri, except that a local image too big for a data URI goes up through the SDK's
        uploads.create_ephemeral (POST /v1/uploads, then the file to its presigned URL) as a runway:// URI,
        once per file contents for UPLOAD_REUSE_S."""
        try:
            too_big = ref.uri.startswith("file:") and _data_uri_length(path_of(ref.uri)) >= DATA_URI_LIMIT
        except (ValueError, OSError):
            too_big = False  # image_uri reports the unreadable file
        if not too_big:
            return image_uri(ref)
        path = path_of(ref.uri)
        digest = sha256_file(path)
        uploaded = self._uploads.get(digest)
        if uploaded is not None and time.monotonic() - uploaded[1] < UPLOAD_REUSE_S:
            return uploaded[0]
        try:
            uri = self.client.uploads.create_ephemeral(file=path).uri
        except runwayml.RunwayMLError as exc:
            raise map_error(exc) from exc
        self._uploads[digest] = (uri, time.monotonic())
        return uri

    def card(self, spec: AssetSpec) -> ModelCard:
        card = MODELS.get(spec.model)
        if card is None or card.capability is not self.capability:
            raise ProviderError(
                ErrorKind.invalid_input, f"no runway {self.capability} model {spec.model!r}", provider=NAME
            )
        wanted = OPERATION_OF.get(spec.model)
        if spec.operation is not wanted:
            raise ProviderError(ErrorKind.invalid_input, self._operation_problem(spec), provider=NAME)
        if spec.strength is not None:
            # SDK 5.24: no Runway model here has a strength-like field (aleph2 neither).
            raise ProviderError(ErrorKind.invalid_input, f"{spec.model} takes no strength", provider=NAME)
        return card

    def _operation_problem(self, spec: AssetSpec) -> str:
        if spec.operation is None:
            return f"{spec.model} works on a source video: it needs operation {OPERATION_OF[spec.model]}"
        if self.capability is Capability.video and spec.operation in OPERATIONS:
            return f"runway does {spec.operation} with {OPERATIONS[spec.operation][0]}, not {spec.model}"
        offered = ", ".join(OPERATIONS) if self.capability is Capability.video else "none"
        return f"runway {self.capability} cannot {spec.operation} (operations offered: {offered})"

    def estimate(self, spec: AssetSpec) -> float:
        return self.card(spec).price(spec)

    def body(self, spec: AssetSpec) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def submit(self, spec: AssetSpec) -> JobRef:
        self.card(spec).check(spec)
        endpoint, body = self.body(spec)
        creator = getattr(self.client.with_options(max_retries=0), endpoint)
        try:
            created = creator.create(**body)
        except runwayml.RunwayMLError as exc:
            raise map_error(exc) from exc
        except ValueError as exc:  # a 200 whose body is not JSON
            raise ProviderError(
                ErrorKind.generation_failed, f"unparseable create answer: {exc}", provider=NAME
            ) from exc
        self._jobs[created.id] = (spec, [])
        return JobRef(provider=NAME, job_id=created.id, spec_key=spec.key())

    def _task(self, job: JobRef) -> Any:
        try:
            return self.client.tasks.retrieve(job.job_id)
        except runwayml.RunwayMLError as exc:
            raise map_error(exc) from exc
        except ValueError as exc:
            raise ProviderError(
                ErrorKind.generation_failed, f"unparseable task: {exc}", provider=NAME
            ) from exc

    def poll(self, job: JobRef) -> JobStatus:
        task = self._task(job)
        status = getattr(task, "status", None)
        if status in ("PENDING", "THROTTLED"):
            return JobStatus(state=JobState.PENDING)
        if status == "SUCCEEDED":
            if job.job_id in self._jobs:
                self._jobs[job.job_id][1][:] = list(task.output)
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

    def fetch(self, job: JobRef) -> Output:
        spec, outputs = self._jobs.get(job.job_id, (job.spec, []))
        if not outputs:
            task = self._task(job)
            if getattr(task, "status", None) != "SUCCEEDED":
                raise ProviderError(ErrorKind.not_found, f"task {job.job_id} has no output", provider=NAME)
            outputs = list(task.output)
        data, mime = download_output(outputs[0], NAME, self._http)
        self._jobs.pop(job.job_id, None)
        return self.output(data, mime, spec)

    def output(self, data: bytes, mime: str, spec: AssetSpec | None) -> Output:
        return Output(data=data, mime=mime, cost_usd=self.estimate(spec) if spec else 0.0)

    def cancel(self, job: JobRef) -> None:
        """Cancel a queued or running task (or delete a finished one)."""
        try:
            self.client.tasks.delete(job.job_id)
        except runwayml.RunwayMLError as exc:
            raise map_error(exc) from exc

    def organization(self) -> OrganizationRetrieveResponse:
        """Credit balance, per-model tier limits and today's usage."""
        try:
            return self.client.organization.retrieve()
        except runwayml.RunwayMLError as exc:
            raise map_error(exc) from exc


class RunwayVideo(_RunwayGenerator):
    """image_to_video when the spec has a keyframe/first_frame input, text_to_video otherwise; a spec with
    an operation works on its `source` input through video_to_video (modify) or video_upscale (upscale to
    spec.resolution, enhance_frame_rate to spec.fps)."""

    capability = Capability.video

    def __init__(self, model: str = "gen4_turbo", client: runwayml.RunwayML | None = None, **kwargs: Any):
        super().__init__(model, client, **kwargs)

    def body(self, spec: AssetSpec) -> tuple[str, dict[str, Any]]:
        if spec.operation is not None:
            return self._operation_body(spec, spec.operation)
        keyframe = next((r for r in spec.inputs if r.role in ("keyframe", "first_frame")), None)
        if keyframe is None and spec.model in IMAGE_ONLY:
            raise ProviderError(
                ErrorKind.invalid_input, f"{spec.model} needs a keyframe image", provider=NAME
            )
        ratios = MODELS[spec.model].resolutions if keyframe else TEXT_TO_VIDEO_RATIOS[spec.model]
        body: dict[str, Any] = {"model": spec.model, "ratio": pick_ratio(spec, ratios), "seed": spec.seed}
        if spec.prompt:
            body["prompt_text"] = spec.prompt[:1000]
        if spec.duration_s is not None:
            body["duration"] = int(spec.duration_s)
        if keyframe is None:
            return "text_to_video", body
        return "image_to_video", {**body, "prompt_image": self.image_input(keyframe)}

    def _operation_body(self, spec: AssetSpec, operation: Operation) -> tuple[str, dict[str, Any]]:
        """The SDK 5.24 params of aleph2 (video_to_video), or of magnific_video_upscaler_creative or
        enhance_frame_rate (video_upscale)."""
        source = next((r for r in spec.inputs if r.role == "source"), None)
        if source is None:
            raise ProviderError(
                ErrorKind.invalid_input, f"{operation} needs an input with role 'source'", provider=NAME
            )
        model, endpoint = OPERATIONS[operation]
        if len(spec.inputs) > 1:
            # None of them has a field for another input in SDK 5.24 (aleph2 has only timed `keyframes`):
            # dropping one would silently make something other than what the spec asks for.
            raise ProviderError(
                ErrorKind.invalid_input,
                f"{model} takes only the source video (SDK 5.24), not {[r.role for r in spec.inputs]}",
                provider=NAME,
            )
        if operation is Operation.enhance_frame_rate:
            if spec.fps is None:
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"enhance_frame_rate needs spec.fps, the target (one of {', '.join(map(str, FRAME_RATES))})",
                    provider=NAME,
                )
            return endpoint, {
                "model": model,
                "video_uri": video_uri(source),
                "target_framerate": str(spec.fps),
            }
        if operation is Operation.upscale:
            target = {"resolution": spec.resolution} if spec.resolution else {}
            return endpoint, {"model": model, "video_uri": video_uri(source), **target}
        body: dict[str, Any] = {"model": model, "video_uri": video_uri(source), "seed": spec.seed}
        if spec.prompt:
            body["prompt_text"] = spec.prompt[:1000]
        if spec.aspect is not None or (spec.width and spec.height):
            body["ratio"] = pick_ratio(spec, V2V_RATIOS)
        return endpoint, body

    def output(self, data: bytes, mime: str, spec: AssetSpec | None) -> Output:
        out = super().output(data, mime, spec)
        if spec is not None:
            out.duration_s = spec.duration_s
        return out


class RunwayImage(_RunwayGenerator):
    """text_to_image; reference, style and character inputs all go out as referenceImages (at most 3): gen4
    takes any of them as a plain reference."""

    capability = Capability.image

    def __init__(self, model: str = "gen4_image", client: runwayml.RunwayML | None = None, **kwargs: Any):
        super().__init__(model, client, **kwargs)

    def body(self, spec: AssetSpec) -> tuple[str, dict[str, Any]]:
        ratio = pick_ratio(spec, MODELS[spec.model].resolutions)
        body: dict[str, Any] = {
            "model": spec.model,
            "prompt_text": spec.prompt[:1000],
            "ratio": ratio,
            "seed": spec.seed,
        }
        refs = [r for r in spec.inputs if r.role in REFERENCE_ROLES]
        if len(refs) > 3 or len(refs) < len(spec.inputs):
            raise ProviderError(
                ErrorKind.invalid_input,
                f"runway images take up to 3 reference images and nothing else; got {[r.role for r in spec.inputs]}",
                provider=NAME,
            )
        references = [{"uri": self.image_input(r)} for r in refs]
        if references or spec.model == "gen4_image_turbo":
            body["reference_images"] = references
        return "text_to_image", body

    def output(self, data: bytes, mime: str, spec: AssetSpec | None) -> Output:
        out = super().output(data, mime, spec)
        if spec is not None:
            out.width, out.height = _shape(pick_ratio(spec, MODELS[spec.model].resolutions))
        return out
