"""Creatomate renders of a brand template, over plain httpx (Creatomate ships no Python SDK): the model, its options
and price are declared in providers/creatomate.toml.

The wire (../shared/providers/creatomate.md, from the official Node SDK): `POST /v1/renders` with the key as a
Bearer token and `{template_id, modifications, output_format, max_width, max_height, webhook_url?}` answers 202
with an array of Render objects (one here); `GET /v1/renders/{id}` reads one. States run planned → waiting →
(transcribing) → rendering → succeeded | failed (`error_message`); a succeeded render's `url` is downloaded at
once. Errors carry a `hint`: 400 bad request, 401 key, 402 credits, 429 rate.

Modifications map a template's element names to values: the headline, body and call to action fill text elements
(`Headline`, `Body`, `CTA` by default), the keyframe, clip and voice fill media elements by their source
(`Image.source`, `Video.source`, `Voice.source`). A template names its elements as its designer chose: the
`element_*` options say which element each one fills. Creatomate fetches every medium from its URL, so each input
goes as a link (a presigned S3 link when the campaign is on S3); a local file is refused before anything is paid.
The render's size is the template's, scaled to fit the spec's width and height.

Webhooks: with CUTROOM_CALLBACK_URL set (or `callback_url=`), the create carries it as `webhook_url` and the
process's receiver (providers.callbacks) is started; Creatomate posts the Render object once, when it finished.
Only its id and status are read, as a prompt to poll: its link is never used.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from cutroom.assets import AssetSpec
from cutroom.capabilities import Capability
from providers.callbacks import CallbackNews
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.inputs import public_link
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.vendor import CalledBack

NAME = "creatomate"
TITLE = "Creatomate"
RENDERS = "/v1/renders"
#: Template ids are UUIDs, as render ids are.
TEMPLATE_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: The text each text element is filled with, by the option that names the element.
TEXTS = {"element_headline": "headline", "element_body": "body", "element_cta": "cta"}
#: The option naming the media element each input role fills.
MEDIA_ELEMENTS = {"image": "element_image", "clip": "element_clip", "voice": "element_voice"}
WAITING = ("planned", "waiting")
ENDED = ("succeeded", "failed")
#: (u) Creatomate documents no moderation; a failure message with these words is read as a refusal.
MODERATION_WORDS = ("moderation", "content policy", "inappropriate", "nsfw")


def webhook_news(body: Any) -> CallbackNews | None:
    """A posted Render object as news; None if it is not one. Only its id and status are read."""
    if not isinstance(body, dict):
        return None
    render_id, status = body.get("id"), body.get("status")
    if not isinstance(render_id, str) or not isinstance(status, str) or "template_id" not in body:
        return None
    return CallbackNews(job_id=render_id, ended=status in ENDED)


def failure_kind(message: str) -> ErrorKind | None:
    """A failed render's error_message as an error kind: a refused output or input, or (None) a passing fault."""
    lowered = message.lower()
    if not any(word in lowered for word in MODERATION_WORDS):
        return None
    return ErrorKind.moderation_output if "output" in lowered else ErrorKind.moderation_input


def output_format(spec: AssetSpec, settings: dict[str, Any]) -> str:
    """The format asked for, else a video when there is motion or sound to carry, else a still."""
    if "output_format" in settings:
        return str(settings["output_format"])
    return "mp4" if any(ref.role in ("clip", "voice") for ref in spec.inputs) else "png"


def modifications(spec: AssetSpec, settings: dict[str, Any]) -> dict[str, str]:
    """The template's elements and what fills them: the copy as text, each input's link as a source."""
    texts = {"headline": settings.get("headline") or spec.prompt, "body": settings.get("body"),
             "cta": settings.get("cta")}  # fmt: skip
    mods = {str(settings[element]): str(texts[text]) for element, text in TEXTS.items() if texts.get(text)}
    for ref in spec.inputs:
        mods[f"{settings[MEDIA_ELEMENTS[ref.role]]}.source"] = public_link(ref, NAME, TITLE)
    return mods


class CreatomateTemplate(CalledBack):
    vendor_name = NAME
    capability = Capability.template
    #: Creatomate posts the finished Render to the create's webhook_url: wait_for wakes on it (CallbackWoken).
    callback_news = staticmethod(webhook_news)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        # The output link of each render a poll found succeeded, so fetch needs no second GET.
        self._ready: dict[str, str] = {}

    # -- errors ------------------------------------------------------------------------------------------------

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """Creatomate's `{"hint": …}` (what its SDK shows), else the common shapes."""
        if isinstance(body, dict) and isinstance(body.get("hint"), str) and body["hint"]:
            return body["hint"]
        return super().error_detail(body, response)

    # -- the request -------------------------------------------------------------------------------------------

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        """Refuse, before paying, what Creatomate cannot render: no template, a template id of the wrong shape,
        two inputs for one element, an input without a link (it fetches them)."""
        template = spec.options.get("template_id")
        if not isinstance(template, str) or not TEMPLATE_ID.fullmatch(template):
            raise ProviderError(
                ErrorKind.invalid_input,
                "Creatomate renders a stored template: set the option template_id to its id (a UUID, from the "
                f"editor's Use Template → API){'' if template is None else f'; got {template!r:.60}'}",
                provider=NAME,
            )
        roles = [ref.role for ref in spec.inputs]
        if len(set(roles)) < len(roles):
            raise ProviderError(
                ErrorKind.invalid_input, f"a template takes one input per role, got {roles}", provider=NAME
            )
        for ref in spec.inputs:
            public_link(ref, NAME, TITLE)

    def body(self, spec: AssetSpec, card: ModelCard) -> dict[str, Any]:
        chosen = card.settings(spec)
        body: dict[str, Any] = {
            "template_id": chosen["template_id"],
            "modifications": modifications(spec, chosen),
            "output_format": output_format(spec, chosen),
        }
        if spec.width and spec.height:  # the template's size, scaled down to fit the asked one
            body |= {"max_width": spec.width, "max_height": spec.height}
        return body

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        body = self.body(spec, card)
        if callback := self.listening():
            body["webhook_url"] = callback
        renders = self.request("POST", RENDERS, json=body).json()
        first = renders[0] if isinstance(renders, list) and renders else None
        render_id = first.get("id") if isinstance(first, dict) else None
        return render_id if isinstance(render_id, str) else ""

    # -- the render --------------------------------------------------------------------------------------------

    def _render(self, job: JobRef) -> dict[str, Any]:
        render = self.request("GET", f"{RENDERS}/{job.job_id}").json()
        if not isinstance(render, dict):
            raise ProviderError(ErrorKind.generation_failed, "poll: answer is not a render", provider=NAME)
        return render

    def status(self, job: JobRef) -> JobStatus:
        render = self._render(job)
        state = render.get("status")
        if state == "succeeded":
            url = render.get("url")
            if not isinstance(url, str) or not url:
                return JobStatus(state=JobState.FAILED, error="succeeded without an output url")
            self._ready[job.job_id] = url
            return JobStatus(state=JobState.SUCCEEDED, progress=1.0)
        if state == "failed":
            reason = str(render.get("error_message") or "failed without a reason")
            return JobStatus(state=JobState.FAILED, error=reason, error_kind=failure_kind(reason))
        if state in WAITING:
            return JobStatus(state=JobState.PENDING, progress=0.0)
        return JobStatus(
            state=JobState.RUNNING
        )  # transcribing, rendering, or a state newer than this adapter

    def result(self, job: JobRef) -> Output:
        url = self._ready.pop(job.job_id, None)
        if url is None:
            render = self._render(job)
            if render.get("status") != "succeeded" or not render.get("url"):
                raise ProviderError(
                    ErrorKind.not_found,
                    f"render {job.job_id} has no output (status {render.get('status')})",
                    provider=NAME,
                )
            url = str(render["url"])
        return self.download(url)
