"""Runware's task-array REST API: FLUX and HiDream images (RunwareImage) and Seedance, Kling, Veo and Hailuo video
(RunwareVideo) by AIR id.

Plain httpx through the base's `request`: the `runware` SDK (0.5.24) runs inference over a WebSocket only, and its
one base-URL knob must be a ws(s):// URL, so it cannot be pointed at the REST endpoint (or the simulator). Every
call is `POST /v1` with a JSON array of one task; the answer is an envelope `{"data": [...], "errors": [...]}` whose
items are matched to the task by its taskUUID, never by order or by HTTP status alone.

Paid once, whatever the network does: the taskUUID is the client's, single-use at Runware, and made here from the
spec's key (a UUID v4 of a hash of the key, the account and an attempt number). A create resent after its answer
was lost (a timeout, a reset, a 5xx) carries the same UUID, so Runware answers `conflictTaskUUID` instead of running
it twice; that answer means "already accepted", and the job is looked up with `getResponse`. Only when the task
under a UUID made nothing billable (it failed at the provider, or Runware has forgotten it) does the next attempt
number give a new UUID; a moderated or invalid task stays refused.

Async delivery (`deliveryMethod: async`), not sync: the create returns at once with an acknowledgement, so the one
paid call is short and rarely cut by a timeout, and the job id (the taskUUID) is durable: a process that restarts
re-attaches to it with getResponse. A sync create holds the connection for the whole generation, the likeliest
call to lose its answer, and its output could only live in this process.

Sizes: width and height on Runware's 64-pixel grid within 128-2048, each side rounded to the grid (1280x720 is sent
as 1280x704). Inputs: a `reference` becomes the seed image (image-to-image, option strength) on FLUX.1 and HiDream,
and every reference role goes to FLUX.2 as `inputs.referenceImages`; a link is sent as it is (Runware fetches it),
a local image as a data URI after it was sniffed (providers.inputs.local_media). Every task asks for
`safety.checkContent` (the SDK's replacement of the deprecated `checkNSFW`): an image marked `NSFWContent` is never
fetched (moderation_output). Every task asks for `includeCost`: the job is booked at the USD cost Runware reports.

Video is the same exchange with a `videoInference` task (Runware delivers video async only): the card's size of
the spec's shape, its length, and the start and end images as `frameImages` (`{inputImage, frame: first|last}`), a
link as it is, a local image as a data URI. The result item's `videoURL` is downloaded at once.

Webhooks: with CUTROOM_CALLBACK_URL set (or `callback_url=`), every task carries it as `webhookURL` (imageInference
and videoInference take it alike, runware.md) and the process's receiver (providers.callbacks) is started before
the create; Runware posts the task's result once it has ended, "the same format as synchronous responses" (the
SDK's README): `{"data": [{taskUUID, videoURL, …}]}`, and wait_for looks at once. (u) Runware signs no post (its webhook page offers only tokens in the URL's
query), and none is needed: only the taskUUID is read, as a prompt for one getResponse, whose answer alone is
trusted.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from typing import Any, ClassVar

import httpx

from cutroom.assets import AssetSpec, InputRef
from cutroom.capabilities import Capability
from providers.callbacks import CallbackNews
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.http import status_kind
from providers.inputs import check_local_inputs, data_uri, link, local_media
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.sizes import asked_size, dimensions, strays
from providers.vendor import CalledBack

NAME = "runware"
#: positivePrompt and negativePrompt: 2 to 3000 characters (contract summary).
MIN_PROMPT, MAX_PROMPT = 2, 3000
GRID, MIN_SIDE, MAX_SIDE = 64, 128, 2048
#: The size of a spec that asks for no shape.
DEFAULT_SIZE = (1024, 1024)
#: Task UUIDs one spec may go through when the tasks under the earlier ones made nothing (failed at the provider).
MAX_ATTEMPTS = 8
#: (u) Runware publishes no cap on input images; FLUX.2 [dev] is said to take up to 4 references.
MAX_REFERENCES = 4
MAX_IMAGE_BYTES = 20 * 1024 * 1024
REFERENCE_ROLES = ("reference", "style_reference", "character_reference")
#: Models that take their images as inputs.referenceImages; the others take one `reference` as a seed image.
REFERENCE_IMAGE_MODELS = frozenset({"runware:400@1"})
#: Input roles of a clip's first frame (a continuing shot's: the previous clip's last frame) and of its last.
START_ROLES = ("keyframe", "first_frame")
END_ROLE = "last_frame"
#: How far a video size may stray from the asked shape.
RATIO_TOLERANCE = 0.08
#: Error codes by kind (docs "Errors" and the SDK; those after insufficientCredits are (u), named by pattern).
CODES = {
    "invalidApiKey": ErrorKind.auth,
    "missingApiKey": ErrorKind.auth,
    "insufficientCredits": ErrorKind.insufficient_credits,
    "contentModerated": ErrorKind.moderation_input,
    "timeoutProvider": ErrorKind.generation_failed,
    "tooManyRequests": ErrorKind.rate_limited,
    "serviceUnavailable": ErrorKind.generation_failed,
    "timeoutQueue": ErrorKind.generation_failed,
    "internalServerError": ErrorKind.generation_failed,
    "taskNotFound": ErrorKind.not_found,
    # (u) the code of a clip the provider's moderation blocked after it was made: not in the docs or the SDK.
    "outputContentModerated": ErrorKind.moderation_output,
}
#: What a task refused for these reasons is refused for again: its UUID's refusal stands.
LASTING = (ErrorKind.invalid_input, ErrorKind.moderation_input, ErrorKind.moderation_output)
#: A task's statuses once it has ended (docs "Task Polling"); `processing` is the one before.
ENDED = ("success", "error")
#: What a result item without a status carries once its task has ended: its output, or an error's code.
ENDED_FIELDS = ("videoURL", "imageURL", "code")


def code_kind(code: str, status: int | None = None) -> ErrorKind:
    """An error item's code as an error kind; an unknown code keeps its HTTP status's meaning."""
    if code in CODES:
        return CODES[code]
    if code.startswith("invalid"):  # invalidPositivePrompt, invalidModel, invalidSeedImage …
        return ErrorKind.invalid_input
    if any(word in code.lower() for word in ("moderat", "nsfw", "safety")):  # codes vary by provider (docs)
        return ErrorKind.moderation_input
    return status_kind(status) if status and status >= 400 else ErrorKind.generation_failed


def task_uuid(spec: AssetSpec, account: str, attempt: int = 0) -> str:
    """The taskUUID of a spec's create: the same for the same spec, account and attempt in any process, so a
    resent create conflicts rather than pays twice. A UUID v4 in form, as Runware requires."""
    digest = hashlib.sha256(f"cutroom:{account}:{spec.key()}:{attempt}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def fit_size(width: int, height: int) -> tuple[int, int]:
    """The asked size on Runware's grid: scaled into 128-2048, each side rounded to a multiple of 64."""
    scale = min(1.0, MAX_SIDE / max(width, height))
    scale = max(scale, MIN_SIDE / min(width, height))

    def side(x: float) -> int:
        return min(MAX_SIDE, max(MIN_SIDE, round(x / GRID) * GRID))

    return side(width * scale), side(height * scale)


def image_value(ref: InputRef) -> str:
    """An input image as Runware takes it: its public link, else the local image (sniffed) as a data URI."""
    return link(ref) or data_uri(*local_media(ref, NAME, ("image",), MAX_IMAGE_BYTES))


def webhook_news(body: Any) -> CallbackNews | None:
    """A Runware webhook body as news of its task; None if it holds no item with a taskUUID (no Runware post).

    Read as the SDK's README shows it, `{"data": [result item]}`; (u) a failed task's as `{"errors": [error
    item]}`, and a bare result item (runware.md: the webhook "receives the same result object"). The task has ended
    when its item says `success` or `error`, or, with no status (as a synchronous answer's items have none), when
    it carries its output or an error's code. Nothing else is read: the post merely prompts a poll."""
    if not isinstance(body, dict):
        return None
    items = [i for key in ("data", "errors") if isinstance(body.get(key), list) for i in body[key]] or [body]
    item = next((i for i in items if isinstance(i, dict) and isinstance(i.get("taskUUID"), str)), None)
    if item is None:
        return None
    status = item.get("status")
    ended = status in ENDED or (status is None and any(field in item for field in ENDED_FIELDS))
    return CallbackNews(job_id=item["taskUUID"], ended=ended)


def _items(body: Any, key: str, task: str) -> list[dict[str, Any]]:
    """The envelope's `data` or `errors` items of one task."""
    items = body.get(key) if isinstance(body, dict) else None
    return [i for i in items or [] if isinstance(i, dict) and i.get("taskUUID") == task]


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _said(error: dict[str, Any]) -> str:
    said = f"{error.get('code')}: {error.get('message', '')}".strip()
    return f"{said} ({error['parameter']})" if error.get("parameter") else said


class _Runware(CalledBack):
    """What images and video share: the task sent once under the spec's UUID, getResponse, outputs, errors, and
    the webhookURL when callbacks are on."""

    vendor_name = NAME
    #: The result item's field holding the output's link.
    url_field: ClassVar[str]
    #: Runware posts to the task's `webhookURL` when it ends: wait_for wakes on it (CallbackWoken).
    callback_news = staticmethod(webhook_news)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        # The result items a successful getResponse saw, so fetching needs no second look.
        self._finished: dict[str, list[dict[str, Any]]] = {}

    @property
    def account(self) -> str:
        """The key's digest: task UUIDs of one account never meet another's. Never the key itself."""
        return hashlib.sha256(self.api_key.encode()).hexdigest()[:32]

    # -- the request ---------------------------------------------------------------------------------------------

    def task(self, spec: AssetSpec, card: ModelCard, task: str) -> dict[str, Any]:
        """The inference task under this taskUUID."""
        raise NotImplementedError

    def called_back(self, task: dict[str, Any]) -> dict[str, Any]:
        """The task, carrying the webhookURL when callbacks are on."""
        callback = self.listening()
        return {**task, "webhookURL": callback} if callback else task

    def _send(self, task: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One task's data items and its error item, whatever the HTTP status of their envelope; a failure of
        the request as a whole (auth, 429, 5xx, no envelope) raises, for the base to map."""
        task_id = task["taskUUID"]
        try:
            response = self.request("POST", "", json=[task])
        except httpx.HTTPStatusError as exc:
            errors = _items(_body(exc.response), "errors", task_id)
            if not errors:
                raise
            return [], {**errors[0], "status_code": exc.response.status_code}
        body = response.json()
        items, errors = _items(body, "data", task_id), _items(body, "errors", task_id)
        if errors:
            return items, errors[0]
        if not items:
            raise ProviderError(
                ErrorKind.generation_failed, f"Runware answered without task {task_id}", provider=NAME
            )
        return items, None

    def _look(self, task: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        return self._send({"taskType": "getResponse", "taskUUID": task})

    def _refusal(self, error: dict[str, Any]) -> ProviderError:
        kind = code_kind(str(error.get("code", "")), error.get("status_code"))
        return ProviderError(kind, _said(error), provider=NAME)

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        for attempt in range(MAX_ATTEMPTS):
            task = task_uuid(spec, self.account, attempt)
            _, error = self._send(self.called_back(self.task(spec, card, task)))
            if error is None:
                return task
            if error.get("code") != "conflictTaskUUID":
                raise self._refusal(error)
            # Taken: by this spec's own create whose answer was lost, or by an attempt that made nothing.
            _, earlier = self._look(task)
            if earlier is None:
                return task  # running or done: the job already paid for
            if self._refusal(earlier).kind in LASTING:
                raise self._refusal(earlier)
        raise ProviderError(
            ErrorKind.generation_failed, f"{MAX_ATTEMPTS} tasks of this spec made nothing", provider=NAME
        )

    # -- the job ---------------------------------------------------------------------------------------------------

    def status(self, job: JobRef) -> JobStatus:
        items, error = self._look(job.job_id)
        if error is not None:
            refusal = self._refusal(error)
            if refusal.kind is ErrorKind.not_found:
                raise refusal
            return JobStatus(state=JobState.FAILED, error=refusal.detail, error_kind=refusal.kind)
        outputs = [i for i in items if isinstance(i.get(self.url_field), str)]
        if not outputs:  # `processing` (the SDK also knows queued, pending …): keep looking
            return JobStatus(state=JobState.RUNNING)
        if any(i.get("NSFWContent") for i in outputs):  # asked for with safety.checkContent: never fetched
            return JobStatus(
                state=JobState.FAILED,
                error="the output was marked NSFWContent by Runware's content check",
                error_kind=ErrorKind.moderation_output,
            )
        self._finished[job.job_id] = outputs
        return JobStatus(state=JobState.SUCCEEDED, progress=1.0)

    def result(self, job: JobRef) -> Output:
        outputs = self._finished.pop(job.job_id, None)
        if outputs is None:
            ended = self.status(job)
            outputs = self._finished.pop(job.job_id, None)
            if outputs is None:
                raise ProviderError(
                    ended.error_kind or ErrorKind.not_found,
                    f"task {job.job_id} has no output ({ended.error or ended.state.value})",
                    provider=NAME,
                )
        output = self.download(outputs[0][self.url_field])
        cost = sum(float(i["cost"]) for i in outputs if isinstance(i.get("cost"), int | float))
        # Booked to 1/100 cent like every Cutroom price; 0 (no cost reported) leaves the card's price.
        return output.model_copy(update={"cost_usd": round(cost, 4)})

    # -- errors ------------------------------------------------------------------------------------------------------

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return _said(errors[0])
        return super().error_detail(body, response)

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("code"):
            return code_kind(str(errors[0]["code"]), status)
        return None


class RunwareImage(_Runware):
    capability = Capability.image
    url_field = "imageURL"

    def estimate(self, spec: AssetSpec) -> float:
        """The card's price at the size Runware is sent (the grid's, not the spec's)."""
        width, height = fit_size(*(asked_size(spec) or DEFAULT_SIZE))
        return self.card(spec).price_of(spec.model_copy(update={"width": width, "height": height}))

    # -- checks before paying ------------------------------------------------------------------------------------

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        settings, problems = card.settings(spec), []
        if len(spec.prompt.strip()) < MIN_PROMPT:
            problems.append(f"a prompt under {MIN_PROMPT} characters")
        if len(str(settings.get("negativePrompt", "..")).strip()) < MIN_PROMPT:
            problems.append(f"a negativePrompt under {MIN_PROMPT} characters")
        references = [ref for ref in spec.inputs if ref.role in REFERENCE_ROLES]
        most = MAX_REFERENCES if card.model in REFERENCE_IMAGE_MODELS else 1
        if len(references) > most:
            problems.append(f"{len(references)} reference images (up to {most})")
        if "strength" in settings and not references:
            problems.append("strength without a reference image")
        asked = asked_size(spec) or DEFAULT_SIZE
        width, height = fit_size(*asked)
        if abs(math.log(width / height * asked[1] / asked[0])) > 0.08:
            problems.append(f"{asked[0]}x{asked[1]} (too far from any size on its 64-pixel grid)")
        if problems:
            raise ProviderError(
                ErrorKind.invalid_input, f"{card.model} cannot make {'; '.join(problems)}", provider=NAME
            )
        for ref in references:  # a local file that is not an image is refused here, before any request
            image_value(ref)

    # -- the request ---------------------------------------------------------------------------------------------

    def task(self, spec: AssetSpec, card: ModelCard, task: str) -> dict[str, Any]:
        """The imageInference task: async delivery, one image by URL, its cost and a content check."""
        width, height = fit_size(*(asked_size(spec) or DEFAULT_SIZE))
        body: dict[str, Any] = {
            "taskType": "imageInference",
            "taskUUID": task,
            "model": card.model,
            "positivePrompt": spec.prompt.strip()[:MAX_PROMPT],
            "width": width,
            "height": height,
            "numberResults": 1,
            "outputType": "URL",
            "deliveryMethod": "async",
            "includeCost": True,
            "safety": {"checkContent": True},
        }
        if spec.seed >= 1:  # Runware's seeds start at 1; 0 lets it pick one
            body["seed"] = spec.seed
        images = [image_value(ref) for ref in spec.inputs if ref.role in REFERENCE_ROLES]
        if images and card.model in REFERENCE_IMAGE_MODELS:
            body["inputs"] = {"referenceImages": images}
        elif images:
            body["seedImage"] = images[0]
        return body | card.settings(spec)  # the options are named as Runware names them


class RunwareVideo(_Runware):
    """videoInference, delivered async and polled with getResponse like an image: the size of the card's nearest
    the spec's shape and pixel count, its length, a first frame and (where the card takes one) a last frame as
    `frameImages`. No Runware model continues an earlier task, so a continuing shot starts from the previous
    clip's last frame. The job is booked at the cost Runware reports (includeCost)."""

    capability = Capability.video
    url_field = "videoURL"

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        roles, problems = [ref.role for ref in spec.inputs], []
        if len(spec.prompt.strip()) < MIN_PROMPT:
            problems.append(f"a prompt under {MIN_PROMPT} characters")
        if sum(role in START_ROLES for role in roles) > 1:
            problems.append("more than one first frame (keyframe or first_frame)")
        if roles.count(END_ROLE) > 1:
            problems.append("more than one last_frame")
        if problems:
            raise ProviderError(
                ErrorKind.invalid_input, f"{card.model} cannot take {'; '.join(problems)}", provider=NAME
            )
        video_size(spec, card)
        # A local file that is not an image is refused here, before any request.
        check_local_inputs(spec, NAME)

    def task(self, spec: AssetSpec, card: ModelCard, task: str) -> dict[str, Any]:
        """The videoInference task: async delivery, one MP4 by URL, its cost and the frames."""
        width, height = video_size(spec, card)
        seconds = spec.duration_s or card.durations_s[0]
        body: dict[str, Any] = {
            "taskType": "videoInference",
            "taskUUID": task,
            "model": card.model,
            "positivePrompt": spec.prompt.strip()[:MAX_PROMPT],
            "width": width,
            "height": height,
            "duration": int(seconds) if float(seconds).is_integer() else seconds,
            "outputType": "URL",
            "outputFormat": "MP4",
            "numberResults": 1,
            "deliveryMethod": "async",
            "includeCost": True,
        }
        # A model whose rates the card knows is told the spec's; another keeps its own.
        if spec.fps is not None and card.frame_rates:
            body["fps"] = spec.fps
        if spec.seed >= 1:
            body["seed"] = spec.seed
        frames = [{"inputImage": image_value(ref), "frame": "last" if ref.role == END_ROLE else "first"}
                  for ref in spec.inputs]  # fmt: skip
        if frames:
            body["frameImages"] = frames
        return body | card.settings(spec)


def video_size(spec: AssetSpec, card: ModelCard) -> tuple[int, int]:
    """The card's size of the spec's shape nearest its pixel count (the model's first size when it asks none)."""
    sizes = [dimensions(size) for size in card.sizes]
    asked = asked_size(spec) or sizes[0]
    fitting = [s for s in sizes if not strays(s[0] / s[1], asked[0] / asked[1], RATIO_TOLERANCE)]
    if not fitting:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"{card.model} makes no size near {asked[0]}x{asked[1]} (it makes {', '.join(card.sizes)})",
            provider=NAME,
        )
    return min(fitting, key=lambda s: abs(s[0] * s[1] - asked[0] * asked[1]))
