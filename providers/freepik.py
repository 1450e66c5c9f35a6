"""Freepik's API serving Kling image-to-video, over plain httpx (Freepik publishes no SDK): the models, their
options and prices are declared in providers/freepik.toml.

The wire (../shared/providers/freepik.md): `POST /v1/ai/image-to-video/{model}` with the key in
`x-freepik-api-key` answers `{"data": {"task_id", "status"}}`; the task is read at a status path that is not
always the model's own (2.1 standard and pro share `kling-v2-1/{id}`, 1.6 uses `kling/{id}`, Elements
`kling-elements/{id}`), so the path comes from the job's model, journaled with its spec. States run CREATED →
IN_PROGRESS → COMPLETED | FAILED; a COMPLETED task's video is the link in `data.generated[0]`, downloaded at once.

Inputs. The start frame is the `image` field and the end frame (Kling 2.1 pro and 1.6 pro only) `image_tail`:
each a public link when the input has one, else the local file as base64 (no `data:` prefix, as Kling takes it),
within Kling's rules (jpg or png, at most 10 MB, at least 300 px a side, 1:2.5 to 2.5:1), checked before any
request. Kling Elements takes 1-4 reference images as links only. Kling cannot extend a generation: a shot that
continues the previous one starts from its last frame, which arrives as the keyframe.

Who retries what: nothing here repeats a create (Freepik has no idempotency key); a transient ProviderError goes
up to the caller's task retries, and wait_for waits out a failing poll.

Webhooks: with CUTROOM_CALLBACK_URL set (or `callback_url=`), every create carries it as `webhook_url` and the
process's receiver (providers.callbacks) is started; Freepik posts the task (the GET body without its `data`
wrapper) on each status change, and wait_for looks at once when one says the task ended. Only the task id and
status of a post are read, as a prompt to poll: its video link is never used.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
from PIL import Image

from cutroom.assets import AssetSpec, InputRef
from cutroom.capabilities import Capability
from providers.callbacks import CallbackNews
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.inputs import checked_file, link, local_media, png_bytes, public_link
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.vendor import CalledBack

NAME = "freepik"
TITLE = "Freepik"
API = "/v1/ai/image-to-video"
#: Where each model's tasks are read (freepik.md: confirmed by public integrations).
STATUS_PATHS = {
    "kling-v2-1-std": "kling-v2-1",
    "kling-v2-1-pro": "kling-v2-1",
    "kling-v2-1-master": "kling-v2-1-master",
    "kling-v2-5-pro": "kling-v2-5-pro",
    "kling-v2": "kling-v2",
    "kling-pro": "kling",
    "kling-std": "kling",
    "kling-elements-pro": "kling-elements",
    "kling-elements-std": "kling-elements",
}
#: Kling Elements' aspect_ratio names.
ELEMENTS_ASPECTS = {"16:9": "widescreen_16_9", "9:16": "social_story_9_16", "1:1": "square_1_1"}
MAX_REFERENCES = 4
PROMPT_CHARS = 2500
#: Kling's rules for an input image (every Freepik Kling page).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_SIDE = 300
MAX_RATIO = 2.5
IMAGE_FORMATS = ("image/jpeg", "image/png")
START_ROLES = ("keyframe", "first_frame")
STATES = ("CREATED", "IN_PROGRESS", "COMPLETED", "FAILED")
ENDED = ("COMPLETED", "FAILED")
#: Words in an error message that mean an empty account or a plan without the model (freepik.md: 402/403).
CREDIT_WORDS = ("credit", "balance", "insufficient", "payment", "subscription", "plan ")
#: Words that mean a refusal of the content. (u) Freepik documents no moderation message.
MODERATION_WORDS = ("moderation", "content policy", "nsfw", "inappropriate", "sensitive", "risk control")


def webhook_news(body: Any) -> CallbackNews | None:
    """A Freepik webhook body (`{task_id, status, generated?}`) as news; None if it is not one. Only the id and
    status are read: the post merely prompts a poll."""
    if not isinstance(body, dict):
        return None
    task_id, status = body.get("task_id"), body.get("status")
    if not isinstance(task_id, str) or status not in STATES:
        return None
    return CallbackNews(job_id=task_id, ended=status in ENDED)


def failure_kind(message: str) -> ErrorKind | None:
    """A FAILED task's reason as an error kind: a refused output, a refused input, or (None) a passing fault."""
    lowered = message.lower()
    if not any(word in lowered for word in MODERATION_WORDS):
        return None
    output = "output" in lowered or "generated" in lowered
    return ErrorKind.moderation_output if output else ErrorKind.moderation_input


class FreepikVideo(CalledBack):
    vendor_name = NAME
    capability = Capability.video
    #: Freepik posts each status change to the create's webhook_url: wait_for wakes on it (CallbackWoken).
    callback_news = staticmethod(webhook_news)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        # The video link of each task a poll found COMPLETED, so fetch needs no second GET.
        self._ready: dict[str, str] = {}

    def auth_headers(self) -> dict[str, str]:
        return {"x-freepik-api-key": self.api_key}

    # -- errors ------------------------------------------------------------------------------------------------

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """Freepik's `{"message": …, "invalid_params": [{field, reason}]}` as one line."""
        if not isinstance(body, dict) or not body.get("message"):
            return super().error_detail(body, response)
        params = body.get("invalid_params") or []
        reasons = "; ".join(f"{p.get('field')}: {p.get('reason')}" for p in params if isinstance(p, dict))
        return f"{body['message']} ({reasons})" if reasons else str(body["message"])

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        lowered = detail.lower()
        if 400 <= status < 500 and status != 429 and any(word in lowered for word in CREDIT_WORDS):
            return ErrorKind.insufficient_credits
        if status in (400, 422) and any(word in lowered for word in MODERATION_WORDS):
            return ErrorKind.moderation_input
        return None

    # -- the request -------------------------------------------------------------------------------------------

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        """Refuse, before paying, what Freepik would: a second start or end frame, more than four references,
        a reference without a link (Elements fetches them), a local image outside Kling's rules."""
        roles = [ref.role for ref in spec.inputs]
        if sum(role in START_ROLES for role in roles) > 1 or roles.count("last_frame") > 1:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"Kling takes one start frame and one end frame, got {roles}",
                provider=NAME,
            )
        if len(roles) > MAX_REFERENCES:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"Kling Elements takes up to {MAX_REFERENCES} reference images, got {len(roles)}",
                provider=NAME,
            )
        for ref in spec.inputs:  # a planned input (not made yet) is neither a file nor a link: checked later
            if link(ref) is None and ref.uri.startswith("file:"):
                if ref.role == "reference":
                    public_link(ref, NAME, TITLE)
                _check_local(ref)

    def body(self, spec: AssetSpec, card: ModelCard) -> dict[str, Any]:
        """The create's JSON: Elements' references and aspect, or a start (and end) frame."""
        body: dict[str, Any] = {"duration": f"{spec.duration_s or card.durations_s[0]:g}"}
        if spec.prompt:
            body["prompt"] = spec.prompt[:PROMPT_CHARS]
        body |= card.settings(spec)
        if card.model.startswith("kling-elements"):
            body["images"] = [public_link(ref, NAME, TITLE) for ref in spec.inputs]
            if spec.aspect is not None:
                body["aspect_ratio"] = ELEMENTS_ASPECTS[spec.aspect.value]
            return body
        for ref in spec.inputs:
            body["image_tail" if ref.role == "last_frame" else "image"] = _image(ref)
        return body

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        body = self.body(spec, card)
        if callback := self.listening():
            body["webhook_url"] = callback
        answer = self.request("POST", f"{API}/{card.vendor_id or card.model}", json=body).json()
        data = answer.get("data") if isinstance(answer, dict) else None
        task_id = data.get("task_id") if isinstance(data, dict) else None
        return task_id if isinstance(task_id, str) else ""

    # -- the task ----------------------------------------------------------------------------------------------

    def _task(self, job: JobRef) -> dict[str, Any]:
        """The task as Freepik's status GET for its model answers it (its `data`)."""
        model = (job.spec.model if job.spec else None) or self.model
        answer = self.request("GET", f"{API}/{STATUS_PATHS[model]}/{job.job_id}").json()
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            raise ProviderError(ErrorKind.generation_failed, "poll: answer without data", provider=NAME)
        return data

    def status(self, job: JobRef) -> JobStatus:
        data = self._task(job)
        state = data.get("status")
        if state == "COMPLETED":
            generated = data.get("generated") or []
            if not generated or not isinstance(generated[0], str):
                return JobStatus(state=JobState.FAILED, error="COMPLETED without a video")
            self._ready[job.job_id] = generated[0]
            return JobStatus(state=JobState.SUCCEEDED, progress=1.0)
        if state == "FAILED":
            # (u) Freepik documents no reason on a FAILED task; one given as error or message is read.
            reason = str(data.get("error") or data.get("message") or "FAILED without a reason")
            return JobStatus(state=JobState.FAILED, error=reason, error_kind=failure_kind(reason))
        if state == "CREATED":
            return JobStatus(state=JobState.PENDING, progress=0.0)
        return JobStatus(state=JobState.RUNNING)  # IN_PROGRESS, or a state newer than this adapter

    def result(self, job: JobRef) -> Output:
        url = self._ready.pop(job.job_id, None)
        if url is None:
            data = self._task(job)
            generated = data.get("generated") or []
            if data.get("status") != "COMPLETED" or not generated:
                raise ProviderError(
                    ErrorKind.not_found,
                    f"task {job.job_id} has no video (status {data.get('status')})",
                    provider=NAME,
                )
            url = generated[0]
        return self.download(url)


def _check_local(ref: InputRef) -> None:
    """A local image Kling would refuse is refused here, before anything is paid for."""
    path, _ = checked_file(ref, NAME, ("image",), MAX_IMAGE_BYTES)
    with Image.open(path) as image:
        width, height = image.size
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_RATIO * min(width, height):
        raise ProviderError(
            ErrorKind.invalid_input,
            f"Kling takes images of at least {MIN_SIDE} px a side and between 1:{MAX_RATIO:g} and {MAX_RATIO:g}:1; "
            f"the {ref.role} input is {width}x{height}",
            provider=NAME,
        )


def _image(ref: InputRef) -> str:
    """An image field's value: the input's public link, else its local file as bare base64 (a jpg or png as it
    is, another format as png)."""
    if url := link(ref):
        return url
    data, mime = local_media(ref, NAME, ("image",), MAX_IMAGE_BYTES)
    if mime not in IMAGE_FORMATS:
        with Image.open(io.BytesIO(data)) as image:
            data = png_bytes(image)
        if len(data) > MAX_IMAGE_BYTES:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"the {ref.role} input is {len(data) / 1e6:.1f} MB as png; Kling takes up to 10 MB",
                provider=NAME,
            )
    return base64.b64encode(data).decode("ascii")
