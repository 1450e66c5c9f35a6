"""Kling AI's official API over plain HTTP (Kling has no Python SDK): image-to-video and text-to-video. The
models, their modes and prices are declared in providers/kling.toml.

Auth: every request carries `Authorization: Bearer <JWT>`, an HS256 token signed with the secret key (iss: the
access key, valid from 5 s ago for 30 min), made again a few minutes before it runs out. Neither key nor token is
ever put in a message or log: errors quote Kling's own message only.

Every answer is Kling's envelope `{code, message, request_id, data}`; a non-zero code is an error whatever the
HTTP status, read by its code table (`code_kind`), so a 429 that says the resource pack is empty is not retried.
Creates are sent once (plain httpx, no retries): a transient failure goes up as a ProviderError, and the task's
retries decide.

Inputs: the start frame (keyframe / first_frame) goes as `image`, an end frame (last_frame, mode pro) as
`image_tail`: each as its public link when it has one, else the local file as raw base64 (Kling takes no `data:`
prefix), checked against Kling's rules first (jpg/png, at most 10 MB, sides of 300 px or more).

Continuity: Kling's video-extend continues only kling-v1.x generations (its capability map) and kling.md gives no
body for it, so no card chains: a continuing shot starts from the previous clip's last frame.

Callbacks: with CUTROOM_CALLBACK_URL set (or `callback_url=`), creates carry it as Kling's callback_url, and Kling
posts the task's data object on each status change. The posts are unsigned: only task_id and task_status are
read, as a prompt to poll.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from PIL import Image

from cutroom.assets import AssetSpec, InputRef
from cutroom.capabilities import Capability
from providers.callbacks import CallbackNews
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.inputs import link, local_media, png_bytes
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.sizes import named_ratio
from providers.vendor import CalledBack

NAME = "kling"
#: The token's life and lead (kling.md's recipe: exp = now + 1800, nbf = now - 5), and how long before its end a
#: new one is made, so a request never leaves with a token about to lapse.
TOKEN_LIFETIME_S = 1800
NOT_BEFORE_S = 5
RENEW_BEFORE_S = 300
MAX_PROMPT = 2500
#: Kling's rules for `image` and `image_tail` (image2video docs).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_IMAGE_SIDE = 300
IMAGE_TYPES = ("image/jpeg", "image/png")
#: text2video's aspect_ratio values; image2video takes the start image's shape.
ASPECTS = ("16:9", "9:16", "1:1")
START_ROLES = ("keyframe", "first_frame")
ENDPOINTS = ("image2video", "text2video")
STATES = {
    "submitted": JobState.PENDING,
    "processing": JobState.RUNNING,
    "succeed": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
}
#: (u) Words of a failed task's task_status_msg that say the platform's risk control refused it. A refused prompt
#: or image is answered at create (code 1301), so a task that fails on them was refused for what it made.
RISK_WORDS = ("risk", "security", "moderat", "sensitive")


def code_kind(code: Any) -> ErrorKind | None:
    """Kling's service code as an error kind (the official code table, kling.md); None for a code it lacks."""
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    if 1000 <= code <= 1004 or code in (
        1100,
        1304,
    ):  # token refused; account frozen; IP not on the allow-list
        return ErrorKind.auth
    if code in (1101, 1102):  # in arrears; resource pack used up or expired
        return ErrorKind.insufficient_credits
    if code in (1103, 1200, 1201, 1202, 1300):  # model not allowed; bad parameters; platform policy
        return ErrorKind.invalid_input
    if code == 1203:
        return ErrorKind.not_found
    if code == 1301:
        return ErrorKind.moderation_input
    if code in (1302, 1303):  # too fast; over the pack's concurrency
        return ErrorKind.rate_limited
    if 5000 <= code <= 5999:
        return ErrorKind.generation_failed
    return None


def jwt_token(access_key: str, secret_key: str, now: float) -> str:
    """Kling's API token: a JWT (HS256) naming the access key, signed with the secret key (RFC 7519)."""
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"iss": access_key, "exp": int(now) + TOKEN_LIFETIME_S, "nbf": int(now) - NOT_BEFORE_S}
    signing_input = f"{_b64url(_compact(header))}.{_b64url(_compact(payload))}"
    signature = hmac.new(secret_key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def _compact(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def callback_news(body: Any) -> CallbackNews | None:
    """A posted body as news: the task's id and whether its status is final; None if it is no Kling task."""
    if not isinstance(body, dict):
        return None
    job_id, status = body.get("task_id"), body.get("task_status")
    if not isinstance(job_id, str) or status not in STATES:
        return None
    return CallbackNews(job_id=job_id, ended=status in ("succeed", "failed"))


class KlingVideo(CalledBack):
    """image2video when the spec has a start or end frame, text2video otherwise."""

    vendor_name = NAME
    capability = Capability.video
    #: Kling posts each status change to the create's callback_url: wait_for wakes on it (CallbackWoken).
    callback_news = staticmethod(callback_news)

    def __init__(
        self,
        model: str | None = None,
        *,
        secret_key: str | None = None,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        super().__init__(model, **options)
        self._secret_key = secret_key
        self._clock = clock
        self._token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()
        # The endpoint of each task created here (its query path), journaled through handle_of.
        self._endpoints: dict[str, str] = {}
        # Output links a poll saw, so fetching needs no second query.
        self._videos: dict[str, str] = {}

    # -- auth --------------------------------------------------------------------------------------------------

    def credential(self, index: int = 0) -> str:
        """The access key (0) or the secret key (1). `api_key=` injects the access key and `secret_key=` its
        secret; an access key injected alone signs with itself, as the simulator's one dummy key does (the
        shared test helpers inject one key), rather than pairing with a secret from the environment."""
        if index == 1 and (injected := self._secret_key or self._api_key) is not None:
            return injected
        return super().credential(index)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def token(self) -> str:
        """The current JWT, signed again when less than RENEW_BEFORE_S of it is left."""
        with self._token_lock:
            now = self._clock()
            if self._token is None or self._token[1] - now < RENEW_BEFORE_S:
                token = jwt_token(self.credential(0), self.credential(1), now)
                self._token = (token, int(now) + TOKEN_LIFETIME_S)
            return self._token[0]

    # -- errors ------------------------------------------------------------------------------------------------

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """Kling's `message` with its code (the code says more than the HTTP status)."""
        if isinstance(body, dict) and "code" in body:
            return f"code {body.get('code')}: {body.get('message') or response.reason_phrase}"
        return super().error_detail(body, response)

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        return code_kind(body.get("code")) if isinstance(body, dict) else None

    def _data(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """The envelope's `data`; a non-zero code in a 2xx answer is an error all the same."""
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict) or body.get("code") != 0:
            if isinstance(body, dict) and body.get("code"):
                raise self.from_response(response, what)
            raise ProviderError(
                ErrorKind.generation_failed, f"{what}: an answer without its data", provider=NAME
            )
        return body["data"]

    # -- requests ----------------------------------------------------------------------------------------------

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        roles = [ref.role for ref in spec.inputs]
        starts = sum(role in START_ROLES for role in roles)
        if starts > 1 or roles.count("last_frame") > 1:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"Kling takes one start frame and one end frame; got inputs {roles}",
                provider=NAME,
            )
        if "last_frame" in roles and card.settings(spec).get("mode") != "pro":
            raise ProviderError(
                ErrorKind.invalid_input,
                f"{card.model} takes an end frame (image_tail) in mode pro only: set option mode=pro",
                provider=NAME,
            )

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        endpoint, body = self.body(spec, card)
        if callback := self.listening():
            body["callback_url"] = callback
        data = self._data(self.request("POST", f"/v1/videos/{endpoint}", json=body), "create")
        job_id = data.get("task_id")
        if isinstance(job_id, str):
            self._endpoints[job_id] = endpoint
        return job_id or ""

    def body(self, spec: AssetSpec, card: ModelCard) -> tuple[str, dict[str, Any]]:
        """The endpoint and the body Kling is sent for a spec the card accepted."""
        settings = card.settings(spec)
        body: dict[str, Any] = {
            "model_name": card.vendor_id or card.model,
            "prompt": spec.prompt[:MAX_PROMPT],
        }
        if "mode" in settings:
            body["mode"] = settings["mode"]
        if "negative_prompt" in settings:
            body["negative_prompt"] = settings["negative_prompt"]
        if spec.duration_s is not None:
            body["duration"] = f"{spec.duration_s:g}"
        start = next((ref for ref in spec.inputs if ref.role in START_ROLES), None)
        end = next((ref for ref in spec.inputs if ref.role == "last_frame"), None)
        if start is None and end is None:
            if aspect := named_ratio(spec, ASPECTS):
                body["aspect_ratio"] = aspect
            return "text2video", body
        if start is not None:
            body["image"] = image_field(start)
        if end is not None:
            body["image_tail"] = image_field(end)
        return "image2video", body

    def handle_of(self, job_id: str) -> dict[str, str]:
        """The task's endpoint, journaled with its id: a task is queried under the path it was created on."""
        endpoint = self._endpoints.get(job_id)
        return {"endpoint": endpoint} if endpoint else {}

    def _endpoint_of(self, job: JobRef) -> str:
        if (endpoint := self._endpoints.get(job.job_id) or job.handle.get("endpoint")) in ENDPOINTS:
            return endpoint  # type: ignore[return-value]
        spec = job.spec
        if spec is not None and not any(ref.role in (*START_ROLES, "last_frame") for ref in spec.inputs):
            return "text2video"
        return "image2video"

    def _task(self, job: JobRef, what: str) -> dict[str, Any]:
        response = self.request("GET", f"/v1/videos/{self._endpoint_of(job)}/{job.job_id}")
        return self._data(response, what)

    def status(self, job: JobRef) -> JobStatus:
        task = self._task(job, "poll")
        status = task.get("task_status")
        state = STATES.get(status, JobState.RUNNING)  # a state newer than this adapter: keep looking
        if state is JobState.SUCCEEDED:
            url = _video_url(task)
            if url is None:
                return JobStatus(
                    state=JobState.FAILED,
                    error="succeed without a video",
                    error_kind=ErrorKind.generation_failed,
                )
            self._videos[job.job_id] = url
            return JobStatus(state=state, progress=1.0)
        if state is JobState.FAILED:
            reason = str(task.get("task_status_msg") or "failed without a reason")
            risky = any(word in reason.lower() for word in RISK_WORDS)
            kind = ErrorKind.moderation_output if risky else ErrorKind.generation_failed
            return JobStatus(state=state, error=reason, error_kind=kind)
        return JobStatus(state=state, progress=0.0 if state is JobState.PENDING else None)

    def result(self, job: JobRef) -> Output:
        """The clip, downloaded at once (Kling clears outputs after ~30 days; the link may expire sooner)."""
        url = self._videos.pop(job.job_id, None)
        if url is None:
            task = self._task(job, "fetch")
            url = _video_url(task) if task.get("task_status") == "succeed" else None
            if url is None:
                raise ProviderError(
                    ErrorKind.not_found,
                    f"task {job.job_id} has no video (status {task.get('task_status')})",
                    provider=NAME,
                )
        return self.download(url)


def image_field(ref: InputRef) -> str:
    """An input as Kling's image fields take it: its public link, else the local file as raw base64 (no data:
    prefix), a jpg or png within Kling's size rules (another format is sent as PNG)."""
    if url := link(ref):
        return url
    data, mime = local_media(ref, NAME, ("image",), MAX_IMAGE_BYTES)
    with Image.open(io.BytesIO(data)) as picture:
        if min(picture.size) < MIN_IMAGE_SIDE:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"the {ref.role} image is {picture.width}x{picture.height}; Kling needs sides of "
                f"{MIN_IMAGE_SIDE} px or more",
                provider=NAME,
            )
        if mime not in IMAGE_TYPES:
            data = png_bytes(picture)
    if len(data) > MAX_IMAGE_BYTES:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"the {ref.role} image is {len(data) / 1e6:.1f} MB as PNG; Kling takes up to 10 MB",
            provider=NAME,
        )
    return base64.b64encode(data).decode("ascii")


def _video_url(task: dict[str, Any]) -> str | None:
    result = task.get("task_result")
    videos = result.get("videos") if isinstance(result, dict) else None
    first = videos[0] if isinstance(videos, list) and videos else None
    url = first.get("url") if isinstance(first, dict) else None
    return url if isinstance(url, str) and url else None
