"""fal.ai's queue API for FLUX images (FalImage) and video (FalVideo: Kling, Pika, WAN, LTX, Mochi), over plain
httpx: the models, their options and prices are declared in providers/fal.toml.

Why not the official `fal-client` SDK (1.0.3): two rules every vendor here keeps, it cannot.
- Creates are sent once. `SyncClient.submit` posts through `_maybe_retry_request` (fal_client/client.py:2374,
  the loop at :1232-1255): a transport error, a timeout or a 408/409/429 is sent again, up to `MAX_ATTEMPTS = 10`
  times with backoff (:1140-1143 `RETRY_CODES = [408, 409, 429]`, `_should_retry` at :1192), and no argument
  turns it off, only the module constant. A reset after fal accepted the submit is a second paid generation
  (fal has no idempotency key).
- Tested against the simulator. The hosts are read once, at import (fal_client/auth.py:84-85 FAL_RUN_HOST,
  FAL_QUEUE_RUN_HOST), into `QUEUE_URL_FORMAT = f"https://{FAL_QUEUE_RUN_HOST}/"` (client.py:83-84): https only,
  and `SyncClient(key, default_timeout)` (:2223) builds its own httpx client (:2235-2244), so there is no base
  URL, client or transport to inject.
So this adapter speaks the SDK's wire protocol itself: `POST {queue}/{model_id}` with the JSON arguments and
`Authorization: Key <key_id:key_secret>` (what `submit` sends), then the status, response and cancel URLs the
submit answered, as `SyncRequestHandle` follows them (:1532-1606), the status read with `?logs=false` as
`handle.status()` sends it. tests/test_fal.py checks these SDK facts still hold.

What fal's queue does that shapes the code:
- Request URLs drop the model's sub-path (submit `fal-ai/flux/dev`, poll `fal-ai/flux/requests/{id}`): the
  submit's URLs are kept per job, and rebuilt from the model id for a job re-attached in another process.
- There is no FAILED state: a run ends COMPLETED, and its result GET says how. The runner validates late, so a
  bad input is a 422 there, not at submit; 422 `content_policy_violation` is input moderation. So `status` reads
  the result at once on COMPLETED: it decides success, and an image fal's safety checker flagged
  (`has_nsfw_concepts`, sent back black) is moderation_output and never downloaded.
- A result GET that fails is the run's own end only when fal's server says so about the request (a 422, a 499
  cancel, or an answer carrying `x-fal-request-id`, the SDK's own test against ingress errors); a 429, an
  ingress 5xx or a dropped connection is a failed look, repeated by wait_for without resubmitting.
- fal queues over the account's concurrency instead of refusing: the declared limit keeps our own queue here.
- A dropped connection or timeout on the submit may come after fal accepted it: the base maps it as a passing
  fault (a task retry submits again, possibly a second paid run); fal has no idempotency key to prevent that.
- Input images go as a public link when the input has one, else inline as a data URI: fal takes either in any
  `*_url` field (fal.md, "File uploads"; fal-client's own `encode`/`encode_image` make data URIs for them).

Webhooks: with CUTROOM_CALLBACK_URL set (or `callback_url=`), every submit carries it as `?fal_webhook=` (as
`SyncClient.submit(webhook_url=)` sends it) and the process's receiver (providers.callbacks) is started; fal then
posts `{request_id, status: OK|ERROR, payload}` when the run ends, and wait_for looks at once. fal signs its
posts (ED25519, unverified details): only the request id is read, as a prompt to poll.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import httpx

from cutroom.assets import AssetSpec, InputRef
from cutroom.capabilities import Capability
from providers.callbacks import CallbackNews
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.inputs import data_uri, data_uri_size, link, local_media
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.sizes import asked_size, nearest_ratio, strays
from providers.vendor import CalledBack, settings_value

NAME = "fal"
KEY_ENV = "FAL_KEY"
#: fal-client also takes the key as two variables (fal_client/auth.py).
KEY_PARTS_ENV = ("FAL_KEY_ID", "FAL_KEY_SECRET")
USER_AGENT = "cutroom (fal-client 1.0.3 wire protocol)"
#: fal's `image_size` presets (u: the pixel sizes are a third-party client's map, matching fal's names).
IMAGE_SIZES = {
    "square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024), "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576),
}  # fmt: skip
#: How far (relative) a preset's shape may stray from the spec's aspect: the output must match it within 8 %.
SHAPE_TOLERANCE = 0.08
#: Most steps per model where it is fewer than the shared option's 50 (fal schema: schnell 1-12).
MAX_STEPS = {"fal-ai/flux/schnell": 12}
#: Input roles sent as the model's one `image_url` (kontext's image to work from, ultra's image prompt).
IMAGE_ROLES = ("reference", "source")
#: (u) Our cap on a local image sent inline as a data URI; fal publishes none. Bigger wants a public link.
DATA_URI_LIMIT = 10 * 1024 * 1024
#: Namespaced apps keep three path segments in their request URLs (fal_client AppId).
APP_NAMESPACES = ("workflows", "comfy")
#: 422 model-error types that are passing faults on fal's side (docs.fal.ai/errors), not the input's fault.
#: The `status` of a webhook post, sent when a run has ended (fal.md "Webhooks").
WEBHOOK_STATES = ("OK", "ERROR")
PASSING_MODEL_ERRORS = {
    "downstream_service_error", "downstream_service_unavailable", "generation_timeout", "internal_server_error",
}  # fmt: skip


def app_path(model_id: str) -> str:
    """The owner/alias part of a model id that fal's request URLs use (the sub-path dropped)."""
    parts = model_id.split("/")
    return "/".join(parts[:3] if parts[0] in APP_NAMESPACES else parts[:2])


@dataclass(frozen=True)
class Handle:
    """Where a queued request is read, polled and cancelled."""

    response_url: str
    status_url: str
    cancel_url: str

    @classmethod
    def under(cls, root: str) -> Handle:
        return cls(response_url=root, status_url=f"{root}/status", cancel_url=f"{root}/cancel")


def webhook_news(body: Any) -> CallbackNews | None:
    """A fal webhook body as news: its request id, which a post only sends once the run has ended (status OK or
    ERROR); None if it is no fal webhook. Its payload is never read: the post merely prompts a poll."""
    if not isinstance(body, dict):
        return None
    request_id, status = body.get("request_id"), body.get("status")
    if not isinstance(request_id, str) or status not in WEBHOOK_STATES:
        return None
    return CallbackNews(job_id=request_id, ended=True)


class _Fal(CalledBack):
    """What both capabilities share: the key, fal's errors, the queue's request URLs and states, cancel, and
    webhooks. A capability writes its model input (`arguments`) and reads its output's URL (`output_url`)."""

    vendor_name = NAME
    #: fal posts to the submit's `fal_webhook` when a run ends: wait_for wakes on it (CallbackWoken).
    callback_news = staticmethod(webhook_news)
    #: What an output is called in messages.
    output_noun: str

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        # Each submitted request's URLs, from the submit's answer.
        self._handles: dict[str, Handle] = {}
        # The output URL of each request a poll found done, so fetch needs no second result GET.
        self._ready: dict[str, str] = {}

    # -- who -----------------------------------------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        """FAL_KEY, else FAL_KEY_ID and FAL_KEY_SECRET joined as fal-client joins them."""
        if self._api_key is None and not self.on_simulator and not settings_value(KEY_ENV):
            key_id, secret = (settings_value(name) for name in KEY_PARTS_ENV)
            if key_id and secret:
                return f"{key_id}:{secret}"
        return self.credential(0)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.api_key}", "User-Agent": USER_AGENT}

    # -- errors --------------------------------------------------------------------------------------------------

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """fal's model errors (`{"detail": [{loc, msg, type}]}`) as 'field: msg (type)'; a cancel's `{"status"}`."""
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, list):
            issues = [_issue_text(issue) for issue in detail if isinstance(issue, dict)]
            return "; ".join(issues) or response.reason_phrase
        if isinstance(body, dict) and not detail and isinstance(body.get("status"), str):
            return body["status"]
        return super().error_detail(body, response)

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        if status == 422:
            types = _issue_types(body)
            if "content_policy_violation" in types:
                return ErrorKind.moderation_input
            if types & PASSING_MODEL_ERRORS:
                return ErrorKind.generation_failed
            return ErrorKind.invalid_input
        lowered = detail.lower()
        if status == 403 and ("exhausted balance" in lowered or "user is locked" in lowered):
            return ErrorKind.insufficient_credits
        if status == 400 and "still in progress" in lowered:
            return ErrorKind.generation_failed  # a result read before it was ready: look again
        return None

    # -- the request ---------------------------------------------------------------------------------------------

    def arguments(self, spec: AssetSpec, card: ModelCard) -> dict[str, Any]:
        """The model's input JSON."""
        raise NotImplementedError

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        body = self.arguments(spec, card)  # a local input that is no image is refused here, before the POST
        params: dict[str, str] = {}
        if callback := self.listening():
            params["fal_webhook"] = callback
        answer = _object(self.request("POST", f"/{card.model}", json=body, params=params), "submit")
        request_id = answer.get("request_id")
        if not isinstance(request_id, str):
            return ""
        self._handles[request_id] = self._handle_from(answer, request_id, card.model)
        return request_id

    def _handle_from(self, answer: dict[str, Any], request_id: str, model: str) -> Handle:
        """The submit's URLs, as the SDK follows them; any that is not under our base URL (where our key may go)
        is rebuilt from the model id instead."""
        rebuilt = self._rebuilt(request_id, model)
        urls = {name: answer.get(name) for name in ("response_url", "status_url", "cancel_url")}
        ours = all(isinstance(url, str) and url.startswith(f"{self.base_url}/") for url in urls.values())
        return Handle(**urls) if ours else rebuilt  # type: ignore[arg-type]

    def _rebuilt(self, request_id: str, model: str) -> Handle:
        return Handle.under(f"{self.base_url}/{app_path(model)}/requests/{request_id}")

    def handle(self, job: JobRef) -> Handle:
        """The job's URLs: from its submit here, else rebuilt from its model (a job re-attached after a restart)."""
        known = self._handles.get(job.job_id)
        if known is not None:
            return known
        model = job.spec.model if job.spec is not None and job.spec.model else self.model
        return self._rebuilt(job.job_id, model)

    # -- the job -------------------------------------------------------------------------------------------------

    def status(self, job: JobRef) -> JobStatus:
        handle = self.handle(job)
        answer = _object(self.request("GET", handle.status_url, params={"logs": "false"}), "status")
        state = answer.get("status")
        if state == "IN_QUEUE":
            return JobStatus(state=JobState.PENDING, progress=0.0)
        if state == "COMPLETED":
            return self._ended(job, handle)
        return JobStatus(state=JobState.RUNNING)  # IN_PROGRESS, or a state newer than this adapter

    def _ended(self, job: JobRef, handle: Handle) -> JobStatus:
        """A COMPLETED request's outcome, read from its result at once."""
        try:
            response = self.request("GET", handle.response_url)
        except httpx.HTTPStatusError as exc:
            response = exc.response
            error = self.from_response(response, "result")
            if response.status_code == 499:
                self._handles.pop(job.job_id, None)
                return JobStatus(state=JobState.CANCELLED, error=error.detail)
            if response.status_code == 422 or "x-fal-request-id" in response.headers:
                self._handles.pop(job.job_id, None)
                return JobStatus(state=JobState.FAILED, error=error.detail, error_kind=error.kind)
            raise error from exc  # the look failed, not the run: wait_for looks again
        url = self.output_url(_object(response, "result"))
        if isinstance(url, JobStatus):
            return url
        self._ready[job.job_id] = url
        return JobStatus(state=JobState.SUCCEEDED, progress=1.0)

    def output_url(self, result: dict[str, Any]) -> str | JobStatus:
        """The output's URL in a result, or the failed status of a result that has none to give."""
        raise NotImplementedError

    def result(self, job: JobRef) -> Output:
        if job.job_id not in self._ready:
            ended = self.status(job)
            if ended.state is not JobState.SUCCEEDED:
                raise ProviderError(
                    ended.error_kind or ErrorKind.not_found,
                    f"request {job.job_id} has no {self.output_noun} ({ended.error or ended.state.value})",
                    provider=NAME,
                )
        output = self.download(self._ready[job.job_id])
        self._ready.pop(job.job_id, None)
        self._handles.pop(job.job_id, None)  # a later look rebuilds its URLs
        return output.model_copy(update={"cost_usd": self._cost(job, output)})

    def _cost(self, job: JobRef, output: Output) -> float:
        """What fal bills for an image made: per megapixel of the output (a preset smaller than the spec costs
        less than its estimate), else 0 so the card's price stands."""
        model = job.spec.model if job.spec is not None and job.spec.model else self.model
        price = self.vendor.card(model, self.capability).price
        if price.unit != "megapixel" or not output.width or not output.height:
            return 0.0
        return round(price.usd * output.width * output.height / 1e6, 4)

    def cancel(self, job: JobRef) -> bool:
        """Cancel a queued or running request: True if fal took the cancel, False if it had already ended."""
        self.vendor.checks_job_id(job.job_id)
        with self.calling("cancel"):
            try:
                self.request("PUT", self.handle(job).cancel_url)
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code == 400 and "ALREADY_COMPLETED" in exc.response.text:
                    return False
                raise
        self._ready.pop(job.job_id, None)
        return True


class FalImage(_Fal):
    capability = Capability.image
    output_noun = "image"

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        settings = card.settings(spec)
        problems = []
        images = [ref for ref in spec.inputs if ref.role in IMAGE_ROLES]
        if len(images) > 1:
            problems.append(f"takes one image input; got {len(images)}")
        steps, most = settings.get("num_inference_steps"), MAX_STEPS.get(card.model)
        if most is not None and isinstance(steps, int) and steps > most:
            problems.append(f"takes num_inference_steps up to {most}; got {steps}")
        preset = settings.get("image_size")
        shape = asked_size(spec)
        if isinstance(preset, str) and preset in IMAGE_SIZES and shape is not None:
            width, height = IMAGE_SIZES[preset]
            if strays(width / height, shape[0] / shape[1], SHAPE_TOLERANCE):
                asked = f"{shape[0]}x{shape[1]}"
                problems.append(f"image_size {preset} is {width}x{height}, not the shape of {asked}")
        if problems:
            raise ProviderError(ErrorKind.invalid_input, f"{card.model} {'; '.join(problems)}", provider=NAME)

    def arguments(self, spec: AssetSpec, card: ModelCard) -> dict[str, Any]:
        """The model's input JSON: prompt, seed, size (or aspect ratio), options, image."""
        settings = card.settings(spec)
        # (u) fal publishes no prompt length cap for FLUX: the prompt goes whole. One image per spec.
        body: dict[str, Any] = {"prompt": spec.prompt, "num_images": 1, "seed": spec.seed}
        ratios = [size for size in card.sizes if ":" in size]
        shape = asked_size(spec)
        preset = settings.pop("image_size", None)
        if ratios:
            if shape is not None:  # without one, ultra makes 16:9 and kontext keeps its input's shape
                body["aspect_ratio"] = nearest_ratio(shape[0] / shape[1], ratios)
        elif preset is not None:
            body["image_size"] = preset
        elif shape is not None:
            # The spec's own size, which fal makes exactly: the channel's pixels, and the megapixels we pay for.
            body["image_size"] = {"width": shape[0], "height": shape[1]}
        if "safety_tolerance" in settings:
            settings["safety_tolerance"] = str(settings["safety_tolerance"])  # fal takes "1".."6" as strings
        body.update(settings)
        image = next((ref for ref in spec.inputs if ref.role in IMAGE_ROLES), None)
        if image is not None:
            body["image_url"] = image_url(image)
        return body

    def output_url(self, result: dict[str, Any]) -> str | JobStatus:
        images = result.get("images")
        first = images[0] if isinstance(images, list) and images else None
        url = first.get("url") if isinstance(first, dict) else None
        if not isinstance(url, str):
            return JobStatus(state=JobState.FAILED, error="fal answered no image")
        if _flagged(result):
            return JobStatus(
                state=JobState.FAILED,
                error="fal's safety checker flagged the image (has_nsfw_concepts; it came back black)",
                error_kind=ErrorKind.moderation_output,
            )
        return url


@dataclass(frozen=True)
class Wire:
    """How one fal video endpoint takes a clip's frames and length, in its own field names and types (fal.md).
    The card says what a user may ask; this says how it is written, and what the field cannot carry."""

    start: str | None = "image_url"  # the start frame's field; None: text-to-video
    end: str | None = None  # the end frame's field, where the model takes one
    duration: type[str] | type[int] | None = None  # `duration` as its enum takes it: Kling "5", Pika 5
    durations: tuple[int, ...] = ()  # that enum
    frames: tuple[int, int] | None = None  # num_frames (min, max) at FRAME_RATE: WAN's length
    length_s: float | None = None  # the one length a model with no length field makes
    aspect_ratio: bool = False  # whether it takes one (without, an i2v clip keeps its start image's shape)
    seed: bool = True  # whether it takes a seed (Kling on fal has none)


#: WAN's frames per second: fal bills WAN by seconds counted at 16 fps (fal.md), so clips are made at 16.
FRAME_RATE = 16
KLING = Wire(duration=str, durations=(5, 10), seed=False)
PIKA = Wire(duration=int, durations=(5, 10))
#: Every fal video model's wire, by model id (tests check each video card has one, and that they agree).
WIRES = {
    "fal-ai/kling-video/v2.1/standard/image-to-video": KLING,
    "fal-ai/kling-video/v2.1/pro/image-to-video": replace(KLING, end="tail_image_url"),
    "fal-ai/kling-video/v2.1/standard/text-to-video": replace(KLING, start=None, aspect_ratio=True),
    "fal-ai/kling-video/v2.1/pro/text-to-video": replace(KLING, start=None, aspect_ratio=True),
    "fal-ai/kling-video/v2.1/master/image-to-video": KLING,
    "fal-ai/kling-video/v2.1/master/text-to-video": replace(KLING, start=None, aspect_ratio=True),
    "fal-ai/kling-video/v2.5-turbo/standard/image-to-video": KLING,
    "fal-ai/kling-video/v2.5-turbo/pro/image-to-video": replace(KLING, end="tail_image_url"),
    "fal-ai/kling-video/v2.5-turbo/pro/text-to-video": replace(KLING, start=None, aspect_ratio=True),
    "fal-ai/pika/v2.2/image-to-video": PIKA,
    "fal-ai/pika/v2.2/text-to-video": replace(PIKA, start=None, aspect_ratio=True),
    "fal-ai/wan/v2.2-a14b/image-to-video": Wire(frames=(17, 161), aspect_ratio=True),
    "fal-ai/wan-flf2v": Wire(
        start="start_image_url", end="end_image_url", frames=(81, 100), aspect_ratio=True
    ),
    "fal-ai/ltx-video/image-to-video": Wire(length_s=5.0),
    "fal-ai/mochi-v1": Wire(start=None, length_s=5.4),
}
#: Input roles that start a clip (a continuing shot's last frame comes as a keyframe) and the one that ends it.
START_ROLES = ("keyframe", "first_frame")
END_ROLE = "last_frame"


class FalVideo(_Fal):
    """Image-to-video from the spec's keyframe (or first_frame; a continuing shot's is the previous clip's last
    frame), with an end frame where the model takes one (Kling pro `tail_image_url`, wan-flf2v), or
    text-to-video. No fal model here extends an earlier run, so no card chains."""

    capability = Capability.video
    output_noun = "video"

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        starts = [ref.role for ref in spec.inputs if ref.role in START_ROLES]
        if len(starts) > 1:
            raise ProviderError(
                ErrorKind.invalid_input, f"{card.model} starts from one image; got {starts}", provider=NAME
            )

    def arguments(self, spec: AssetSpec, card: ModelCard) -> dict[str, Any]:
        """The model's input JSON: prompt, length and shape in its own fields, options, start and end frames."""
        wire = WIRES[card.model]
        settings = card.settings(spec)
        body: dict[str, Any] = {"prompt": spec.prompt}
        if wire.seed:
            body["seed"] = spec.seed
        if spec.duration_s is not None:
            body |= self._length(spec.duration_s, card, wire)
        shape = asked_size(spec)
        if wire.aspect_ratio and shape is not None:
            body["aspect_ratio"] = nearest_ratio(shape[0] / shape[1], list(card.aspects))
        if card.sizes:  # sent always: the card's price is the first size's unless another is named
            body["resolution"] = settings.pop("resolution", card.sizes[0])
        body.update(settings)
        for ref in spec.inputs:
            field = wire.end if ref.role == END_ROLE else wire.start
            if field is not None:  # the card allows only the roles the model has a field for
                body[field] = image_url(ref)
        return body

    def _length(self, seconds: float, card: ModelCard, wire: Wire) -> dict[str, Any]:
        """The clip's length in the model's own field; a length the field cannot carry is refused unsent (fal
        validates only after the run is queued, and may bill a refused run)."""
        if wire.duration is not None:
            if seconds not in wire.durations:
                allowed = " or ".join(map(str, wire.durations))
                raise self._refuse(card, f"takes duration {allowed} s; got {seconds:g}")
            return {"duration": wire.duration(int(seconds))}
        if wire.frames is not None:
            frames = round(seconds * FRAME_RATE) + 1  # WAN makes 4k+1 frames: 16 a second and the first
            low, high = wire.frames
            if not low <= frames <= high:
                span = f"{(low - 1) / FRAME_RATE:g}-{(high - 1) / FRAME_RATE:g} s"
                raise self._refuse(
                    card, f"takes {low}-{high} frames at {FRAME_RATE} fps ({span}); got {seconds:g} s"
                )
            return {"num_frames": frames, "frames_per_second": FRAME_RATE}
        if wire.length_s is not None and abs(seconds - wire.length_s) > 0.05:
            raise self._refuse(card, f"makes {wire.length_s:g} s clips only; got {seconds:g}")
        return {}

    def _refuse(self, card: ModelCard, why: str) -> ProviderError:
        return ProviderError(ErrorKind.invalid_input, f"{card.model} {why}", provider=NAME)

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        """(u) A policy refusal at no input field (loc `["body"]`) is the made clip's: fal's docs keep field
        locations for inputs, and flag video outputs with no other marker."""
        policy = [i for i in _issues(body) if i.get("type") == "content_policy_violation"]
        if status == 422 and policy and all(len(i.get("loc") or []) <= 1 for i in policy):
            return ErrorKind.moderation_output
        return super().error_kind(status, detail, body)

    def output_url(self, result: dict[str, Any]) -> str | JobStatus:
        video = result.get("video")
        url = video.get("url") if isinstance(video, dict) else None
        if not isinstance(url, str):
            return JobStatus(state=JobState.FAILED, error="fal answered no video")
        return url


def image_url(ref: InputRef) -> str:
    """An image input as fal takes it: a public link as it is, a local image (its bytes sniffed) inline."""
    if url := link(ref):
        return url
    data, mime = local_media(ref, NAME, ("image",))
    if data_uri_size(len(data), mime) > DATA_URI_LIMIT:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"the {ref.role} input is {len(data) / 1e6:.1f} MB; fal takes a local image up to "
            f"{DATA_URI_LIMIT / 1e6:.0f} MB inline here (give it a public url instead)",
            provider=NAME,
        )
    return data_uri(data, mime)


def _flagged(result: dict[str, Any]) -> bool:
    flags = result.get("has_nsfw_concepts")
    return isinstance(flags, list) and bool(flags) and flags[0] is True


def _object(response: httpx.Response, what: str) -> dict[str, Any]:
    """A JSON object answer; anything else is an unreadable answer (transient, as a truncated body is)."""
    answer = response.json()
    if not isinstance(answer, dict):
        raise ProviderError(ErrorKind.generation_failed, f"{what}: unreadable answer", provider=NAME)
    return answer


def _issues(body: Any) -> list[dict[str, Any]]:
    detail = body.get("detail") if isinstance(body, dict) else None
    return [issue for issue in detail if isinstance(issue, dict)] if isinstance(detail, list) else []


def _issue_types(body: Any) -> set[str]:
    return {str(issue.get("type")) for issue in _issues(body)}


def _issue_text(issue: dict[str, Any]) -> str:
    """One model error as 'field: message (type)'; its `input` (which may echo the prompt) is left out."""
    loc = [str(part) for part in issue.get("loc") or [] if part != "body"]
    text = f"{'.'.join(loc)}: {issue.get('msg')}" if loc else str(issue.get("msg"))
    return f"{text} ({issue['type']})" if issue.get("type") else text
