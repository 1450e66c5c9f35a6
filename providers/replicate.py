"""Replicate's predictions API for images (ReplicateImage) and video (ReplicateVideo), through plain httpx on
the shared vendor base.

A card's model is Replicate's own reference: `owner/name` runs an official model at its latest version
(`POST /v1/models/{owner}/{name}/predictions`), `owner/name:<64-hex version>` runs a community model pinned to
that version (`POST /v1/predictions` with `version`). Polls read `GET /v1/predictions/{id}`. The models, their
inputs as options and their prices are declared in providers/replicate.toml; how each model names the inputs a
spec fills (its size, a source to modify, references) is WIRING below.

Why not the official `replicate` SDK (1.0.7): every client it builds wraps its transport in a RetryTransport
that re-sends GETs on 429/503/504 up to 10 times, sleeping out Retry-After (minutes, on the vendor's clock)
inside one poll, with no switch to turn it off; a create has no timeout at all unless `wait=` is given, and then
its read timeout is the wait's, not ours; ReplicateError keeps the status and detail but drops the response, so
Retry-After is lost; its Prediction model rejects the `aborted` status; and it takes a transport, not an
httpx.Client. The API is three calls, so the base's httpx client does them: one attempt per request, our timeout,
every error through the base's mapping. POSTs go once: a create that failed transiently is the caller's to
retry (Replicate refused it, or it never arrived), never ours.

Fast models are created with `Prefer: wait=N` (N about twice their latency): the create is held until the
prediction ends, so it usually comes back with its output and no poll is needed. The read timeout is the wait
plus our timeout, so a held create is never cut off and re-sent; an answer held past N says `starting` and the
job is polled as any other. Video models never are: a clip takes minutes.

Video (ReplicateVideo) runs the official models ByteDance Seedance 1 Lite, Kling 2.1, MiniMax Video-01, Veo 3 Fast
and Wan 2.2 i2v fast, each with its own input names (VIDEO_WIRING). None continues an earlier prediction, so a
continuing shot starts from the previous clip's last frame; an end frame goes where the model takes one. The clip
is downloaded as soon as the prediction succeeds: Replicate deletes API outputs after an hour.

Webhooks: with CUTROOM_CALLBACK_URL set (or `callback_url=`), every create carries it as `webhook` with
`webhook_events_filter: ["completed"]`, and the process's receiver (providers.callbacks) is started first;
Replicate then posts the final Prediction once it has ended, and wait_for looks at once. Hosted video models print
no progress bar, so without it their end is found by a blind schedule. Replicate signs its posts (Standard
Webhooks, the account's `whsec_` secret); the signature is not checked, as only the id and status are read: a
post, forged or not, merely prompts a poll. A held create that ended is posted too, and that post is what wakes
its wait: with a callback URL, wait_for's first scheduled look is the late safety net, not a held create's early one.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError

from cutroom.assets import AssetSpec, InputRef
from cutroom.capabilities import Capability
from providers.callbacks import CallbackNews
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.inputs import data_uri, data_uri_size, link, local_media
from providers.polling import PollSchedule
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.sizes import asked_size, named_ratio, nearest_ratio, ratio_of, strays
from providers.vendor import CalledBack

NAME = "replicate"
#: Replicate takes a local file as a data URI "only recommended if the file is less than 1MB"
#: (replicate.com/docs/topics/predictions/input-files); a bigger image goes as a JPEG made to fit.
DATA_URI_LIMIT = 1_000_000
JPEG_QUALITY = 90
#: Models expected to finish within this many seconds are created with `Prefer: wait`.
WAIT_FOR_MODELS_UP_TO_S = 5.0
#: Ideogram's seed is at most 2147483647; one range serves every model. 0 is "random" to FLUX, so it is not sent.
SEED_RANGE = 2**31
#: States that end a prediction; `aborted` is a Cancel-After deadline met before it started.
STATES = {
    "starting": JobState.PENDING,
    "processing": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "canceled": JobState.CANCELLED,
    "aborted": JobState.CANCELLED,
}
#: A tqdm bar in an open-weight model's logs (" 57%|█████     | 16/28 [..."), as the SDK reads progress.
PROGRESS = re.compile(r"^\s*(\d+)%\s*\|.+?\|\s*(\d+)/(\d+)", re.MULTILINE)
#: The 429 body says when the limit resets: "Request was throttled. Your rate limit resets in ~30s."
THROTTLE_RESET = re.compile(r"resets in ~?(\d+(?:\.\d+)?)\s*s")
#: An open-weight model's safety checker blocked every image: FLUX "All generated images contained NSFW
#: content…", SD "NSFW content detected…".
OUTPUT_REFUSED = ("nsfw",)
#: Replicate's refusal "The input or output was flagged as sensitive… (E005)" names no side; partner models
#: (FLUX pro, Ideogram, Recraft) say it of both. The prompt is what can change, so it counts as the input's.
INPUT_REFUSED = ("flagged as sensitive", "(e005)")
#: PIL's message when a model cannot open an input image (a data URI of no image passes the API).
UNREADABLE_INPUT = ("cannot identify image file",)
#: SDXL's trained frames (the same ~1 MP buckets as FLUX's aspect ratios), for models sized by width/height.
FRAMES = {
    "1:1": (1024, 1024), "16:9": (1344, 768), "21:9": (1536, 640), "3:2": (1216, 832), "2:3": (832, 1216),
    "4:5": (896, 1088), "5:4": (1088, 896), "3:4": (896, 1152), "4:3": (1152, 896), "9:16": (768, 1344),
    "9:21": (640, 1536),
}  # fmt: skip
#: How far a chosen ratio may stray from the asked one (the output must match within 8 %).
RATIO_TOLERANCE = 0.08


@dataclass(frozen=True)
class Wiring:
    """Where a model takes what a spec fills: its input names differ from model to model."""

    #: "aspect_ratio": one of the card's ratios; "width_height": a frame from FRAMES.
    size: str = "aspect_ratio"
    #: The image a modify starts from (img2img).
    source: str | None = None
    #: One reference image guiding the composition (FLUX Redux's image_prompt).
    reference: str | None = None
    #: A list of style reference images.
    style_references: str | None = None
    #: The input the `steps` option sets.
    steps: str = "num_inference_steps"
    #: The model makes several images on request: ask for one.
    num_outputs: bool = False
    #: The model's prompt length cap, where it has one.
    prompt_chars: int | None = None


#: By `owner/name`; a model declared without an entry here (a user's own card) takes an aspect_ratio and
#: nothing else a spec fills.
WIRING = {
    "black-forest-labs/flux-schnell": Wiring(num_outputs=True),
    "black-forest-labs/flux-dev": Wiring(source="image", num_outputs=True),
    "black-forest-labs/flux-1.1-pro": Wiring(reference="image_prompt"),
    "black-forest-labs/flux-1.1-pro-ultra": Wiring(reference="image_prompt"),
    "stability-ai/stable-diffusion-3.5-large": Wiring(source="image", steps="steps"),
    "ideogram-ai/ideogram-v3-turbo": Wiring(style_references="style_reference_images"),
    # (u) Recraft's own API caps prompts at 1000 characters; Replicate's schema says nothing.
    "recraft-ai/recraft-v3": Wiring(prompt_chars=1000),
    "stability-ai/sdxl": Wiring(size="width_height", source="image", num_outputs=True),
}
#: The wiring field each input role fills.
ROLE_FIELDS = {"source": "source", "reference": "reference", "style_reference": "style_references"}


@dataclass(frozen=True)
class VideoWiring:
    """Where a video model takes its frames and its length: each names them its own way."""

    #: The input of the image the clip starts from (a continuing shot's: the previous clip's last frame).
    start: str
    #: The input of the image it ends on, where the model takes one.
    end: str | None = None
    #: "duration": whole seconds; "frames": num_frames at frames_per_second (Wan); None: one length only.
    length: str | None = "duration"
    #: Takes aspect_ratio (the others frame the clip as their start image is framed, or make one frame only).
    aspect: bool = True
    seed: bool = True
    #: The option and value an end frame needs (Kling 2.1 takes end_image in pro mode only).
    end_needs: tuple[str, str] | None = None


#: By `owner/name`, from the models' input schemas on replicate.com (from memory, (u) where the TOML says so).
VIDEO_WIRING = {
    "bytedance/seedance-1-lite": VideoWiring(start="image", end="last_frame_image"),
    "kwaivgi/kling-v2.1": VideoWiring(
        start="start_image", end="end_image", aspect=False, seed=False, end_needs=("mode", "pro")
    ),
    "minimax/video-01": VideoWiring(start="first_frame_image", length=None, aspect=False, seed=False),
    "google/veo-3-fast": VideoWiring(start="image"),
    "wan-video/wan-2.2-i2v-fast": VideoWiring(start="image", length="frames", aspect=False),
}
#: Input roles of a clip's first and last frame.
START_ROLES = ("keyframe", "first_frame")
END_ROLE = "last_frame"
#: Wan's num_frames range, and its frame rate when the spec names none.
WAN_FRAMES = (81, 121)
WAN_FPS = 16


def model_ref(model: str) -> tuple[str, str | None]:
    """A card's model as Replicate's `owner/name` and its pinned version (None: the official model)."""
    name, _, version = model.partition(":")
    return name, version or None


def wiring_of(model: str) -> Wiring:
    return WIRING.get(model_ref(model)[0], Wiring())


def failure_kind(error: str) -> ErrorKind | None:
    """A failed prediction's error text as an error kind; None is a passing failure (generation_failed)."""
    lowered = error.lower()
    if any(marker in lowered for marker in OUTPUT_REFUSED):
        return ErrorKind.moderation_output
    if any(marker in lowered for marker in INPUT_REFUSED):
        return ErrorKind.moderation_input
    if any(marker in lowered for marker in UNREADABLE_INPUT):
        return ErrorKind.invalid_input
    return None


def progress(logs: Any) -> float | None:
    """The last progress bar in a prediction's logs, 0..1; None when the model prints none."""
    bars = PROGRESS.findall(logs) if isinstance(logs, str) else []
    if not bars:
        return None
    _, done, total = map(int, bars[-1])
    return min(1.0, done / total) if total else None


def webhook_news(body: Any) -> CallbackNews | None:
    """A posted Prediction (`{id, status, urls, …}`) as news: its id, and whether its status is final; None if
    the body is no Prediction. Its output is never read: the post merely prompts a poll."""
    if not isinstance(body, dict):
        return None
    prediction_id, status = body.get("id"), body.get("status")
    if not isinstance(prediction_id, str) or status not in STATES or not isinstance(body.get("urls"), dict):
        return None
    return CallbackNews(job_id=prediction_id, ended=STATES[status].terminal)


def _nearest(target: float, ratios: list[str] | tuple[str, ...]) -> str | None:
    """The ratio closest to target (on a log scale), if it is within RATIO_TOLERANCE of it."""
    if not ratios:
        return None
    best = nearest_ratio(target, ratios)
    return None if strays(ratio_of(best), target, RATIO_TOLERANCE) else best


class _Replicate(CalledBack):
    """What images and video share: the create (held or not), webhooks, states, outputs, cancel and errors."""

    vendor_name = NAME
    #: Replicate posts the final Prediction to the create's `webhook`: wait_for wakes on it (CallbackWoken).
    callback_news = staticmethod(webhook_news)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        # Predictions known to be finished (a held create's answer, a poll that read `succeeded`), so neither
        # the next poll nor the fetch asks again.
        self._seen: dict[str, dict[str, Any]] = {}

    # -- the request ------------------------------------------------------------------------------------------

    def _input(self, spec: AssetSpec, card: ModelCard) -> dict[str, Any]:
        """The model's `input` object."""
        raise NotImplementedError

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        name, version = model_ref(card.model)
        body: dict[str, Any] = {"input": self._input(spec, card)}
        if version:
            path, body["version"] = "/v1/predictions", version
        else:
            path = f"/v1/models/{name}/predictions"
        if callback := self.listening():
            body |= {"webhook": callback, "webhook_events_filter": ["completed"]}
        wait = self._wait_s(card)
        headers = {"Prefer": f"wait={wait}"} if wait else {}
        try:
            # Held up to `wait` s: the read may take that long on top of our own timeout.
            response = self.request("POST", path, json=body, headers=headers,
                                    timeout=httpx.Timeout(self.timeout, read=self.timeout + wait))  # fmt: skip
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:  # the model route: no such official model
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"Replicate runs no official model {name}: a community model needs a pinned version "
                    "(owner/name:version)",
                    provider=NAME,
                ) from exc
            raise
        prediction = _object(response)
        job_id = prediction.get("id")
        if isinstance(job_id, str) and wait and _finished(prediction):
            # A held create that saw the prediction end answers `processing` with the output already set (the
            # SDK's run() documents this): it is done.
            if prediction.get("status") == "processing":
                prediction = {**prediction, "status": "succeeded"}
            self._seen[job_id] = prediction
        return job_id if isinstance(job_id, str) else ""

    def _image(self, ref: InputRef) -> str:
        """An image input as Replicate takes it: its public link, else the local image (sniffed) as a data
        URI, re-encoded as a JPEG when it would pass Replicate's 1 MB."""
        if url := link(ref):
            return url
        data, mime = local_media(ref, NAME, ("image",))
        if data_uri_size(len(data), mime) > DATA_URI_LIMIT:
            data, mime = _fitted(data, ref)
        return data_uri(data, mime)

    def _wait_s(self, card: ModelCard) -> int:
        """Seconds a create is held for (0: not held): twice a fast model's latency, on the simulator's clock."""
        if not 0 < card.expected_latency_s <= WAIT_FOR_MODELS_UP_TO_S:
            return 0
        return max(1, math.ceil(2 * card.expected_latency_s * self.time_scale))

    def schedule_of(self, model: str | None = None) -> PollSchedule:
        """A held create's job has ended or run past twice its latency: the first look comes at once (from the
        held answer, usually, without a request)."""
        schedule = super().schedule_of(model)
        if self._wait_s(self.vendor.card(model or self.model, self.capability)):
            return schedule.model_copy(update={"first_share": 0.01})
        return schedule

    # -- the answer -------------------------------------------------------------------------------------------

    def status(self, job: JobRef) -> JobStatus:
        prediction = self._seen.get(job.job_id) or self._get(job.job_id)
        status = prediction.get("status")
        state = STATES.get(status, JobState.RUNNING)  # a state newer than this adapter: keep polling
        if state is JobState.SUCCEEDED:
            self._seen[job.job_id] = prediction
            return JobStatus(state=state, progress=1.0)
        self._seen.pop(job.job_id, None)
        if state is JobState.FAILED:
            error = str(prediction.get("error") or "failed without a reason")
            return JobStatus(state=state, error=error, error_kind=failure_kind(error))
        if state is JobState.CANCELLED:
            return JobStatus(state=state, error=f"prediction {status}")
        return JobStatus(state=state, progress=progress(prediction.get("logs")))

    def result(self, job: JobRef) -> Output:
        """The first output, downloaded at once: Replicate deletes API outputs after an hour."""
        prediction = self._seen.pop(job.job_id, None) or self._get(job.job_id)
        output = prediction.get("output")
        url = output[0] if isinstance(output, list) and output else output
        if prediction.get("status") != "succeeded" or not isinstance(url, str) or not url:
            removed = prediction.get("data_removed")
            gone = " (Replicate removed it: outputs last an hour)" if removed else ""
            raise ProviderError(
                ErrorKind.not_found,
                f"prediction {job.job_id} has no output (status {prediction.get('status')}){gone}",
                provider=NAME,
            )
        if url.startswith("data:"):  # a held create may answer with the file inline
            data, mime = _decoded(url)
            return self.described(data, mime)
        return self.download(url)

    def cancel(self, job: JobRef) -> None:
        """Stop a starting or running prediction (a finished one is left as it is)."""
        self.vendor.checks_job_id(job.job_id)
        with self.calling("cancel"):
            try:
                self.request("POST", f"/v1/predictions/{job.job_id}/cancel")
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 409:  # 409: it had already finished
                    raise
        self._seen.pop(job.job_id, None)

    def _get(self, job_id: str) -> dict[str, Any]:
        return _object(self.request("GET", f"/v1/predictions/{job_id}"))

    # -- errors ------------------------------------------------------------------------------------------------

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """problem+json `{"title", "detail", "status"}` as "title: detail"; a 429 has only its detail."""
        if isinstance(body, dict):
            title, detail = body.get("title"), body.get("detail")
            if title and detail:
                return f"{title}: {detail}"
            if title or detail:
                return str(title or detail)
        return super().error_detail(body, response)

    def from_response(self, response: httpx.Response, what: str) -> ProviderError:
        """The base's mapping; a 429 without Retry-After waits as long as its body says the limit lasts."""
        error = super().from_response(response, what)
        reset = THROTTLE_RESET.search(response.text) if error.kind is ErrorKind.rate_limited else None
        if reset and error.retry_after is None:
            error.retry_after = float(reset.group(1))
        return error


class ReplicateImage(_Replicate):
    capability = Capability.image

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        roles = [ref.role for ref in spec.inputs]
        for role in dict.fromkeys(roles):
            _field(card.model, role)
        for role in ("source", "reference"):
            if roles.count(role) > 1:
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"{card.model} takes one {role} image; got {roles.count(role)}",
                    provider=NAME,
                )
        self._size(spec, card)

    def _input(self, spec: AssetSpec, card: ModelCard) -> dict[str, Any]:
        """The model's input: prompt, size, seed, one output, the card's options, the spec's images."""
        wiring = wiring_of(card.model)
        prompt = spec.prompt[: wiring.prompt_chars] if wiring.prompt_chars else spec.prompt
        values: dict[str, Any] = {"prompt": prompt, **self._size(spec, card)}
        if seed := spec.seed % SEED_RANGE:
            values["seed"] = seed
        if wiring.num_outputs:
            values["num_outputs"] = 1  # one asset per job; a second image would be paid and thrown away
        for option, value in card.settings(spec).items():
            values[wiring.steps if option == "steps" else option] = value
        for ref in spec.inputs:
            field = _field(card.model, ref.role)
            if ref.role == "style_reference":
                values.setdefault(field, []).append(self._image(ref))
            else:
                values[field] = self._image(ref)
        return values

    def _size(self, spec: AssetSpec, card: ModelCard) -> dict[str, Any]:
        """The model's frame nearest the spec's shape (its aspect, else its width and height); none asked, none
        sent (the model's default)."""
        if (shape := asked_size(spec)) is None:
            return {}
        target = shape[0] / shape[1]
        wiring = wiring_of(card.model)
        ratios = list(FRAMES) if wiring.size == "width_height" else list(card.aspects)
        if spec.aspect is not None and spec.aspect.value in ratios:
            chosen: str | None = spec.aspect.value
        else:
            chosen = _nearest(target, ratios)
        if chosen is None:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"{card.model} has no frame near {target:.3g}:1 (it has {', '.join(ratios) or 'none declared'})",
                provider=NAME,
            )
        if wiring.size == "width_height":
            width, height = FRAMES[chosen]
            return {"width": width, "height": height}
        return {"aspect_ratio": chosen}


def _field(model: str, role: str) -> str:
    """The model's input that takes an image of this role."""
    field = getattr(wiring_of(model), ROLE_FIELDS.get(role, ""), None)
    if not isinstance(field, str):
        raise ProviderError(
            ErrorKind.invalid_input, f"{model} takes no {role} image through this adapter", provider=NAME
        )
    return field


def _finished(prediction: dict[str, Any]) -> bool:
    return bool(prediction.get("output")) or prediction.get("status") in ("succeeded", "failed", "canceled",
                                                                           "aborted")  # fmt: skip


def _object(response: httpx.Response) -> dict[str, Any]:
    """A 2xx answer's JSON object; anything else is an answer that cannot be read (transient)."""
    body = response.json()
    if not isinstance(body, dict):
        raise ProviderError(ErrorKind.generation_failed, "an answer that is no prediction", provider=NAME)
    return body


def _decoded(uri: str) -> tuple[bytes, str]:
    header, _, payload = uri.partition(",")
    try:
        return base64.b64decode(payload, validate=True), header.removeprefix("data:").split(";")[0]
    except (binascii.Error, ValueError) as exc:
        raise ProviderError(ErrorKind.generation_failed, "an inline output that does not decode",
                            provider=NAME) from exc  # fmt: skip


def _fitted(data: bytes, ref: InputRef) -> tuple[bytes, str]:
    """The image as a JPEG whose data URI fits DATA_URI_LIMIT: re-encoded, then halved until it does."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ProviderError(ErrorKind.invalid_input, f"the {ref.role} image cannot be read: {exc}",
                            provider=NAME) from exc  # fmt: skip
    while True:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
        if data_uri_size(buffer.tell(), "image/jpeg") <= DATA_URI_LIMIT or min(image.size) <= 64:
            return buffer.getvalue(), "image/jpeg"
        image = image.resize((max(1, image.width // 2), max(1, image.height // 2)))


class ReplicateVideo(_Replicate):
    """Clips from the official video models: a start image (a continuing shot's is the previous clip's last
    frame: no Replicate model continues a prediction), an end image where the model takes one, the length and
    frame as each model names them (VIDEO_WIRING). Never held with `Prefer: wait`: a clip takes minutes, past
    its 60 s, so the create answers at once and the prediction is polled."""

    capability = Capability.video

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        wiring = _video_wiring(card.model)
        roles = [ref.role for ref in spec.inputs]
        problems = []
        if sum(role in START_ROLES for role in roles) > 1:
            problems.append("more than one start frame (keyframe or first_frame)")
        if roles.count(END_ROLE) > 1:
            problems.append("more than one last_frame")
        if END_ROLE in roles and wiring.end is None:
            problems.append("an end frame (it takes none)")
        elif END_ROLE in roles and wiring.end_needs:
            option, value = wiring.end_needs
            if card.settings(spec).get(option) != value:
                problems.append(f"an end frame without {option}={value}")
        if wiring.length == "frames" and not WAN_FRAMES[0] <= _frame_count(spec) <= WAN_FRAMES[1]:
            problems.append(f"{_frame_count(spec)} frames (num_frames {WAN_FRAMES[0]} to {WAN_FRAMES[1]})")
        if problems:
            raise ProviderError(
                ErrorKind.invalid_input, f"{card.model} cannot take {'; '.join(problems)}", provider=NAME
            )

    def _input(self, spec: AssetSpec, card: ModelCard) -> dict[str, Any]:
        """Prompt, frame, length, seed, the card's options and the start and end images, by the model's names."""
        wiring = _video_wiring(card.model)
        values: dict[str, Any] = {"prompt": spec.prompt}
        if wiring.aspect and (aspect := named_ratio(spec, card.aspects)):
            values["aspect_ratio"] = aspect
        if wiring.length == "duration" and spec.duration_s is not None:
            values["duration"] = int(spec.duration_s)
        elif wiring.length == "frames":
            values |= {"num_frames": _frame_count(spec), "frames_per_second": spec.fps or WAN_FPS}
        if wiring.seed and (seed := spec.seed % SEED_RANGE):
            values["seed"] = seed
        values |= card.settings(spec)
        for ref in spec.inputs:
            values[wiring.end if ref.role == END_ROLE else wiring.start] = self._image(ref)
        return values


def _video_wiring(model: str) -> VideoWiring:
    wiring = VIDEO_WIRING.get(model_ref(model)[0])
    if wiring is None:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"{model} is no video model this adapter knows the inputs of ({', '.join(VIDEO_WIRING)})",
            provider=NAME,
        )
    return wiring


def _frame_count(spec: AssetSpec) -> int:
    """Wan's num_frames for the spec's length at its frame rate: one more than the frames between."""
    return round((spec.duration_s or 5.0) * (spec.fps or WAN_FPS)) + 1
