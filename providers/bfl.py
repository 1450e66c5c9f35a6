"""Black Forest Labs' FLUX API: FLUX.2, FLUX1.1 [pro] (and ultra), FLUX.1 [pro]/[dev] and Kontext images.

Plain httpx through the base's `request`: BFL ships no official Python SDK (PyPI `black-forest-labs` is a third
party's). The key goes in an `x-key` header on submits and polls, never to the signed sample links.

A task is submitted with `POST /v1/{model}`, answered `{id, polling_url, cost}`. The polling_url names the cluster
that took the task (api.bfl.ai hands it to e.g. api.eu2.bfl.ai), and only that cluster answers for it, so it is
kept per job id and polled verbatim; a process that re-attaches to a job it did not submit falls back to
`/v1/get_result?id=` under its base URL, which finds the task only where that base is its cluster. `result.sample`
links live 10 minutes: the output is downloaded at once. The `cost` (credits, $0.01 each) is what the job is
booked at.

Who retries what: nothing here repeats a submit (BFL takes no idempotency key; a repeated POST is a second paid
task). Transient failures surface as ProviderError(rate_limited | generation_failed) for the caller's retries;
wait_for waits out a failing poll or download.

Webhooks: with CUTROOM_CALLBACK_URL set (or `callback_url=`), every submit carries it as `webhook_url` and the
process's receiver (providers.callbacks) is started; BFL posts `{id, status, …}` once when the task has ended, and
wait_for looks at once. No `webhook_secret` is sent: only the id is read, as a prompt to poll the task's cluster.
Without it, a running task's progress predicts its end, but a task that sat Pending before any look saw it is
predicted as if it ran from its submit, so that look comes late by the queued time (see polling.Forecast).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from PIL import Image, UnidentifiedImageError

from cutroom.assets import AssetSpec, InputRef
from cutroom.capabilities import Capability
from cutroom.storage import path_of
from providers.callbacks import CallbackNews
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.inputs import link, local_media
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.sizes import asked_size, ratio_of
from providers.vendor import CalledBack

NAME = "bfl"
#: (u) BFL publishes no size cap for base64 images; 20 MB is its FLUX 3 keyframe cap.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
#: Hosts a polling_url may name and still get our key: BFL's own (api.eu2.bfl.ai …; api.bfl.ml is the old name).
BFL_DOMAINS = (".bfl.ai", ".bfl.ml")
#: A Ready poll's sample link is refreshed by a new poll when it expires within this many seconds.
LINK_MARGIN_S = 5.0
#: Redirects a poll follows, each to a BFL host only (the key goes with it).
MAX_REDIRECTS = 3
#: BFL's final statuses other than Ready, by the error kind they mean. `Failed` is newer models' `Error`.
FAILED = {
    "Request Moderated": ErrorKind.moderation_input,
    "Content Moderated": ErrorKind.moderation_output,
    "Error": ErrorKind.generation_failed,
    "Failed": ErrorKind.generation_failed,
    "Task not found": ErrorKind.not_found,
}
#: The statuses of a task that has ended, the only ones a webhook post carries.
ENDED = ("Ready", *FAILED)
MP = 1024 * 1024
#: FLUX.2's price beyond its card's first output megapixel, per further output MP and per input MP (u, the
#: simulator's figures).
EXTRA_MP_USD = {
    "flux-2-pro": 0.015,
    "flux-2-max": 0.03,
    "flux-2-flex": 0.06,
    "flux-2-klein-9b": 0.002,
    "flux-2-klein-4b": 0.001,
}


@dataclass(frozen=True)
class Family:
    """How a family of models takes its size and its images."""

    #: "pixels": width and height on a grid; "ratio": an aspect_ratio string, BFL picks the pixels.
    sizing: str
    #: The image fields in the order inputs fill them.
    images: tuple[str, ...]
    step: int = 32
    low: int = 256
    high: int | None = 1440
    max_area: int | None = None
    #: The narrowest and widest aspect ratio a "ratio" model takes.
    ratios: tuple[str, str] = ("9:21", "21:9")
    #: Narrower ranges than the shared option declares.
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


FLUX1 = Family("pixels", ("image_prompt",), ranges={"guidance": (1.5, 5.0)})
ULTRA = Family("ratio", ("image_prompt",))
KONTEXT = Family(
    "ratio",
    ("input_image", *(f"input_image_{n}" for n in range(2, 5))),
    ratios=("3:7", "7:3"),
)
FLUX2 = Family(
    "pixels",
    ("input_image", *(f"input_image_{n}" for n in range(2, 9))),
    step=16,
    low=64,
    high=None,
    max_area=4 * MP,
    ranges={"safety_tolerance": (0, 5)},
)
#: Kontext's safety_tolerance with an input image (docs.bfl.ai; the simulator does not enforce it).
KONTEXT_EDIT_TOLERANCE = 2


def family(model: str) -> Family:
    """The family of a model, by BFL's naming, so a card added through CUTROOM_CARDS is driven too."""
    if model.startswith("flux-2-"):
        return FLUX2
    if model.startswith("flux-kontext-"):
        return KONTEXT
    if model.endswith("-ultra"):
        return ULTRA
    return FLUX1


def fit_pixels(width: int, height: int, shape: Family) -> tuple[int, int]:
    """The size on the family's grid nearest the asked one in aspect, then in area, within its bounds."""
    scale = 1.0
    if shape.high:
        scale = min(scale, shape.high / max(width, height))
    if shape.max_area:
        scale = min(scale, math.sqrt(shape.max_area / (width * height)))
    scale = max(scale, shape.low / min(width, height))
    target_w, target_h = width * scale, height * scale
    step, high = shape.step, shape.high or math.inf

    def around(x: float) -> range:
        return range(
            max(shape.low, (math.floor(x / step) - 2) * step),
            math.ceil(x / step + 2) * step + 1,
            step,
        )

    candidates = [(w, h) for w in around(target_w) for h in around(target_h)
                  if w <= high and h <= high and (not shape.max_area or w * h <= shape.max_area)]  # fmt: skip
    if not candidates:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"BFL cannot make {width}x{height} at any size it takes",
            provider=NAME,
        )
    asked = width / height
    return min(candidates, key=lambda c: (round(abs(math.log(c[0] / c[1] / asked)), 3),
                                          abs(c[0] * c[1] - target_w * target_h)))  # fmt: skip


def aspect_ratio(spec: AssetSpec) -> str | None:
    """The spec's aspect as BFL writes it ("16:9"), from its aspect or its width and height."""
    if spec.aspect is not None:
        return spec.aspect.value
    if spec.width and spec.height:
        divisor = math.gcd(spec.width, spec.height)
        return f"{spec.width // divisor}:{spec.height // divisor}"
    return None


def image_input(ref: InputRef) -> str:
    """An input image as BFL takes it: its public link (BFL fetches it), else the local image's raw base64,
    sniffed first: a file that is not an image never leaves."""
    if url := link(ref):
        return url
    data, _ = local_media(ref, NAME, ("image",), MAX_IMAGE_BYTES)
    return base64.b64encode(data).decode("ascii")


def _expired(url: str) -> bool:
    """Whether a signed sample link (Azure SAS `se=` expiry) is past or about to be."""
    expiry = parse_qs(urlsplit(url).query).get("se")
    if not expiry:
        return False
    try:
        ends = datetime.fromisoformat(expiry[0])
    except ValueError:
        return False
    if ends.tzinfo is None:
        ends = ends.replace(tzinfo=UTC)
    return (ends - datetime.now(UTC)).total_seconds() < LINK_MARGIN_S


def webhook_news(body: Any) -> CallbackNews | None:
    """A BFL webhook body (`{id, status: Ready|Error|…}`) as news that the task ended; None if it is no BFL post.
    Its result is never read: the post merely prompts a poll."""
    if not isinstance(body, dict):
        return None
    task_id, status = body.get("id"), body.get("status")
    if not isinstance(task_id, str) or status not in ENDED:
        return None
    return CallbackNews(job_id=task_id, ended=True)


class BflImage(CalledBack):
    vendor_name = NAME
    capability = Capability.image
    #: BFL posts to the submit's `webhook_url` when a task ends: wait_for wakes on it (CallbackWoken).
    callback_news = staticmethod(webhook_news)

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        # Per job id, from its submit: the cluster's polling_url and the cost BFL reported (credits).
        self._polling: dict[str, str] = {}
        self._costs: dict[str, float] = {}
        # The sample link of a Ready poll, so fetching needs no second poll.
        self._samples: dict[str, str] = {}

    def auth_headers(self) -> dict[str, str]:
        return {"x-key": self.api_key}

    @property
    def api_base(self) -> str:
        """The base URL without a trailing /v1 (the summary writes BFL's base with one; paths here add it)."""
        return self.base_url.removesuffix("/v1")

    # -- checks and the estimate ---------------------------------------------------------------------------------

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        shape, settings = family(card.model), card.settings(spec)
        problems = []
        if len(spec.inputs) > len(shape.images):
            problems.append(f"takes up to {len(shape.images)} input images; got {len(spec.inputs)}")
        for name, (low, high) in shape.ranges.items():
            if name in settings and not low <= float(settings[name]) <= high:  # type: ignore[arg-type]
                problems.append(f"option {name}={settings[name]} (allowed: {low:g}..{high:g})")
        if (
            shape is KONTEXT
            and spec.inputs
            and int(settings.get("safety_tolerance") or 0) > KONTEXT_EDIT_TOLERANCE
        ):
            problems.append(f"safety_tolerance above {KONTEXT_EDIT_TOLERANCE} with an input image")
        if shape.sizing == "ratio" and (ratio := aspect_ratio(spec)):
            low, high = shape.ratios
            if not ratio_of(low) - 1e-9 <= ratio_of(ratio) <= ratio_of(high) + 1e-9:
                problems.append(f"aspect {ratio} (it makes {low} to {high})")
        elif shape.sizing == "pixels" and (size := asked_size(spec)):
            fit_pixels(*size, shape)
        if problems:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"{card.model} cannot make this: {'; '.join(problems)}",
                provider=NAME,
            )

    def estimate(self, spec: AssetSpec) -> float:
        """The card's price; FLUX.2 adds its per-megapixel charge beyond the first output MP and for inputs."""
        card = self.card(spec)
        price = card.price_of(spec)
        extra = EXTRA_MP_USD.get(card.model)
        shape = family(card.model)
        if not extra or shape.sizing != "pixels":
            return price
        try:
            width, height = fit_pixels(*size, shape) if (size := asked_size(spec)) else (1024, 1024)
        except ProviderError:  # a size the model cannot make: check() says so; an estimate does not refuse
            return price
        megapixels = max(0.0, width * height / MP - 1) + sum(map(_input_mp, spec.inputs))
        return round(price + extra * megapixels, 4)

    # -- the request --------------------------------------------------------------------------------------------

    def body(self, spec: AssetSpec, card: ModelCard) -> dict[str, Any]:
        """BFL's JSON body for the model: only fields it reads (it silently ignores the rest)."""
        shape = family(card.model)
        body: dict[str, Any] = {"prompt": spec.prompt, "seed": spec.seed}
        if shape.sizing == "pixels" and (size := asked_size(spec)):
            body["width"], body["height"] = fit_pixels(*size, shape)
        elif shape.sizing == "ratio" and (ratio := aspect_ratio(spec)):
            body["aspect_ratio"] = ratio
        # An edit's source comes first: input_image is the image Kontext and FLUX.2 edit.
        inputs = sorted(spec.inputs, key=lambda ref: ref.role != "source")
        body |= {name: image_input(ref) for name, ref in zip(shape.images, inputs, strict=False)}
        return body | card.settings(spec)

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        body = self.body(spec, card)
        if callback := self.listening():
            body["webhook_url"] = callback
        try:
            response = self.request("POST", f"{self.api_base}/v1/{card.model}", json=body)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:  # the endpoint itself is gone: a model BFL no longer serves
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"BFL does not serve {card.model} (HTTP 404 on /v1/{card.model})",
                    provider=NAME,
                ) from exc
            raise
        answer = response.json()
        answer = answer if isinstance(answer, dict) else {}
        job_id = answer.get("id")
        if isinstance(job_id, str):
            polling_url = answer.get("polling_url")
            if isinstance(polling_url, str) and self._ours(polling_url):
                self._polling[job_id] = polling_url
            if isinstance(cost := answer.get("cost"), int | float):
                self._costs[job_id] = float(cost)
        return job_id or ""

    # -- polling ----------------------------------------------------------------------------------------------------

    def _ours(self, url: str) -> bool:
        """Whether a URL BFL handed out may be sent our key: the base's own host, or a BFL host over https."""
        parts, base = urlsplit(url), urlsplit(self.api_base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return True
        return parts.scheme == "https" and parts.hostname.endswith(BFL_DOMAINS)

    def handle_of(self, job_id: str) -> dict[str, str]:
        """The cluster's polling URL, journaled with the id: only that cluster answers for the task."""
        url = self._polling.get(job_id)
        return {"polling_url": url} if url else {}

    def _poll(self, job: JobRef) -> dict[str, Any]:
        """The task's get_result body; a 404 that says `Task not found` is an answer, not an error."""
        job_id = job.job_id
        journaled = job.handle.get("polling_url")
        url = self._polling.get(job_id) or (journaled if journaled and self._ours(journaled) else None)
        response = self.http.get(
            url or f"{self.api_base}/v1/get_result", params=None if url else {"id": job_id},
            headers=self.auth_headers(),
        )  # fmt: skip
        for _ in range(MAX_REDIRECTS):
            target = response.headers.get("location")
            if not response.is_redirect or not target or not self._ours(urljoin(str(response.url), target)):
                break
            response = self.http.get(urljoin(str(response.url), target), headers=self.auth_headers())
        if response.status_code == 404:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("status") == "Task not found":
                if url is None:
                    body["error"] = (
                        f"task not found at {self.api_base}: BFL answers only on the cluster that took it, "
                        "and this process did not submit it (set BFL_BASE_URL to that cluster, e.g. https://api.eu1.bfl.ai)"
                    )
                return body
        if response.is_redirect:  # not followed: it leads away from BFL, and the key would go with it
            raise ProviderError(
                ErrorKind.generation_failed, f"poll redirected away from BFL (HTTP {response.status_code})",
                provider=NAME,
            )  # fmt: skip
        response.raise_for_status()
        body = response.json()
        return body if isinstance(body, dict) else {}

    def status(self, job: JobRef) -> JobStatus:
        body = self._poll(job)
        status = body.get("status")
        if status == "Ready":
            result = body.get("result") or {}
            sample = result.get("sample") if isinstance(result, dict) else None
            if not isinstance(sample, str):  # a paid task: look again (each Ready poll signs a new link)
                raise ProviderError(ErrorKind.generation_failed, "Ready without a sample link", provider=NAME)
            self._samples[job.job_id] = sample
            return JobStatus(state=JobState.SUCCEEDED, progress=1.0)
        if status in FAILED:
            self._forget(job.job_id)
            return JobStatus(
                state=JobState.FAILED,
                error=_reason(status, body),
                error_kind=FAILED[status],
            )
        progress = body.get("progress")
        if isinstance(progress, int | float) and 0 <= progress <= 1:
            return JobStatus(state=JobState.RUNNING, progress=float(progress))
        if status == "Pending":  # progress is null while queued
            return JobStatus(state=JobState.PENDING)
        return JobStatus(state=JobState.RUNNING)  # a state newer than this adapter: keep looking

    def result(self, job: JobRef) -> Output:
        """Download the sample at once; a link about to expire is refreshed by a new poll first."""
        sample = self._samples.pop(job.job_id, None)
        if sample is None or _expired(sample):
            status = self.status(job)
            sample = self._samples.pop(job.job_id, None)
            if sample is None:
                raise ProviderError(
                    ErrorKind.not_found, f"task {job.job_id} has no output ({status.error or status.state})",
                    provider=NAME,
                )  # fmt: skip
        output = self.download(sample)
        cost = self._costs.get(job.job_id)
        self._forget(job.job_id)
        return output if cost is None else output.model_copy(update={"cost_usd": round(cost / 100, 4)})

    def _forget(self, job_id: str) -> None:
        for kept in (self._polling, self._costs, self._samples):
            kept.pop(job_id, None)

    # -- the rest of BFL's answers ------------------------------------------------------------------------------

    def credits(self) -> float:
        """The account balance in USD (BFL reports credits of $0.01)."""
        with self.calling("credits"):
            return float(self.request("GET", f"{self.api_base}/v1/credits").json()["credits"]) / 100

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """FastAPI's 422 items as `field: message`; other answers by the base's reading."""
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, list):
            return "; ".join(
                f"{'.'.join(map(str, item.get('loc', [])[1:])) or 'body'}: {item.get('msg')}"
                for item in detail
                if isinstance(item, dict)
            )
        return super().error_detail(body, response)

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        if status == 422 and "api key" in detail.lower():  # "Invalid API key format": a malformed key
            return ErrorKind.auth
        return None


def _reason(status: str, body: dict[str, Any]) -> str:
    """A failed task's status with what BFL said about it (moderation reasons, an error text)."""
    details = body.get("details")
    reasons = details.get("Moderation Reasons") if isinstance(details, dict) else None
    said = body.get("error") or (", ".join(map(str, reasons)) if isinstance(reasons, list) else None)
    return f"{status}: {said}" if said else status


def _input_mp(ref: InputRef) -> float:
    """An input image's megapixels for the estimate: read from its local file, else taken as 1 MP (a link)."""
    try:
        with Image.open(path_of(ref.uri)) as image:
            return image.width * image.height / MP
    except (ValueError, OSError, UnidentifiedImageError):
        return 1.0
