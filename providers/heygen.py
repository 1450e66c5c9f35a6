"""HeyGen's avatar videos over plain httpx (HeyGen publishes no Python SDK): the models, their options and prices
are declared in providers/heygen.toml.

The wire (../shared/providers/heygen.md): the key goes in `X-Api-Key`. Media goes up first, as raw bytes with
their Content-Type, to the upload host (`POST https://upload.heygen.com/v1/asset` → `data.id`, and for an image
`data.image_key`); the upload host is not the API's, so it is derived from the base URL: upload.heygen.com for
HeyGen itself, `<base URL>/upload` for the simulator or a proxy. Then one paid create:
- talking-photo-v2: `POST /v2/video/generate` with one scene, the talking photo (option `talking_photo_id`)
  lip-synced to the audio asset (`voice: {type: audio, audio_asset_id}`), at the asked `dimension`;
- avatar-iv: `POST /v2/video/av4/generate`, the uploaded portrait's `image_key` animated to the audio asset, at
  the `video_orientation` nearest the asked aspect.
Both answer `data.video_id` (32 hex digits), read at `GET /v1/video_status.get?video_id=`: pending (or waiting)
→ processing → completed with a `video_url` (a signed link, fetched at once) or failed with `error{code,
message, detail}`.

The account's talking photos are listed at `GET /v2/avatars` (`data.talking_photos[].talking_photo_id`), once per
process, so a script's flow refuses a talking photo the account lacks before anything is paid for.

Uploads are remembered (cutroom.uploads): the same audio or portrait bytes are sent once per storage, and a later
run anywhere reuses HeyGen's asset id. Option `asset_id` is a HeyGen *audio* asset the user uploaded already (the
script's `Scene N heygen id:` line): it is lip-synced as it is, and the audio input is not uploaded. A kept asset
HeyGen no longer knows (`asset_not_found`: deleted at HeyGen) is uploaded again and the create sent once more —
a refused create is not billed.

Who retries what: nothing here repeats a create that HeyGen may have accepted; a transient ProviderError goes up
to the caller's task retries, and wait_for waits out a failing poll.
"""

from __future__ import annotations

import io
import re
import threading
from typing import Any

import httpx
from PIL import Image

from cutroom import stopping
from cutroom.assets import AssetSpec, InputRef
from cutroom.capabilities import Capability
from cutroom.media import MediaError, probe
from cutroom.uploads import Upload, uploaded
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.inputs import checked_file, png_bytes, upload_media
from providers.protocol import JobRef, JobState, JobStatus, Output
from providers.sizes import asked_size, named_ratio
from providers.vendor import VendorAdapter

NAME = "heygen"
UPLOAD_HOST = "https://upload.heygen.com"
AUDIO_FORMATS = ("audio/mpeg", "audio/wav")
IMAGE_FORMATS = ("image/jpeg", "image/png")
#: heygen.md: images up to ~10 MB. (u) No cap is given for audio.
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_AUDIO_BYTES = 50 * 1024 * 1024
ASSET_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
#: v2 generate: each side an even number from 128 to 4096.
SIDE = (128, 4096)
ORIENTATIONS = {"16:9": "landscape", "9:16": "portrait", "1:1": "square"}
TITLE_CHARS = 100
ENDED = ("completed", "failed")
#: How often the free list of talking photos is asked over passing faults.
LIST_TRIES = 4
#: Words in an error that mean an empty account (heygen.md: `insufficient_credit`, (u)).
CREDIT_WORDS = ("insufficient_credit", "credit", "quota")
#: (u) HeyGen documents no moderation message: these words in a refusal or a failed video's reason mean one.
MODERATION_WORDS = ("moderation", "content policy", "nsfw", "inappropriate", "violat")


def failure_kind(reason: str) -> ErrorKind | None:
    """A failed video's reason as an error kind: a refused output or input, a plan limit, or (None) a passing fault."""
    lowered = reason.lower()
    if any(word in lowered for word in MODERATION_WORDS):
        output = "generated" in lowered or "output" in lowered
        return ErrorKind.moderation_output if output else ErrorKind.moderation_input
    if (
        "too long" in lowered or "upgrade" in lowered
    ):  # heygen.md: 40119 "Video is too long … upgrade your plan"
        return ErrorKind.invalid_input
    return None


class HeyGenAvatar(VendorAdapter):
    vendor_name = NAME
    capability = Capability.avatar

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        # The video link of each job a poll found completed, so fetch needs no second GET.
        self._ready: dict[str, str] = {}
        self._photos: frozenset[str] | None = None
        self._photos_lock = threading.Lock()

    def auth_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}

    @property
    def upload_url(self) -> str:
        """HeyGen's upload host for HeyGen itself; under the base URL for the simulator or a proxy."""
        return UPLOAD_HOST if self.base_url == self.vendor.base_url else f"{self.base_url}/upload"

    def estimate(self, spec: AssetSpec) -> float:
        """HeyGen bills the video's seconds, which are the voice's: a spec that names no length is priced at its
        audio input's."""
        if spec.duration_s is None and (seconds := _audio_seconds(spec)):
            spec = spec.model_copy(update={"duration_s": seconds})
        return super().estimate(spec)

    # -- errors ------------------------------------------------------------------------------------------------

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """v2's `{"error": {"code", "message"}}` or v1's `{"code", "message"}` as `code: message`."""
        code, message = _code(body), None
        if isinstance(body, dict):
            error = body.get("error")
            message = error.get("message") if isinstance(error, dict) else body.get("message")
        if not message:
            return super().error_detail(body, response)
        return f"{code}: {message}" if isinstance(code, str) else str(message)

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        code, lowered = _code(body), detail.lower()
        if status == 429:
            return None
        if isinstance(code, str) and code.endswith("_not_found") and status < 500:
            return (
                ErrorKind.invalid_input
            )  # a talking photo, voice or asset the request names that HeyGen lacks
        if 400 <= status < 500 and status not in (401, 404) and any(w in lowered for w in CREDIT_WORDS):
            return ErrorKind.insufficient_credits
        if status in (400, 422) and any(word in lowered for word in MODERATION_WORDS):
            return ErrorKind.moderation_input
        return None

    # -- the request -------------------------------------------------------------------------------------------

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        """Refuse, before paying, what HeyGen would: no talking photo for talking-photo-v2, no voice, two voices or
        two faces, an asset id of another shape, a local file HeyGen cannot take."""
        options = card.settings(spec)
        if card.model == "talking-photo-v2" and not options.get("talking_photo_id"):
            raise _refusal(
                "talking-photo-v2 needs option talking_photo_id (the HeyGen talking photo that presents); "
                "for a portrait photo without one, use model avatar-iv"
            )
        roles = [ref.role for ref in spec.inputs]
        if roles.count("audio") > 1 or roles.count("portrait") > 1:
            raise _refusal(f"HeyGen takes one audio and one portrait input, got {roles}")
        asset_id = options.get("asset_id")
        if asset_id is not None and not ASSET_ID.match(str(asset_id)):
            raise _refusal(f"asset_id {str(asset_id)[:40]!r} is not a HeyGen asset id")
        if asset_id is None and "audio" not in roles:
            raise _refusal(
                "HeyGen lip-syncs to a voice: give an audio input, or option asset_id (an audio asset)"
            )
        for ref in spec.inputs:  # a planned input (not made yet) is neither a file nor a link: checked later
            if ref.uri.startswith("file:") and not (ref.role == "audio" and asset_id is not None):
                _check_local(ref)

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        uploads = self._uploads(spec, card)
        try:
            return self._generate(spec, card, uploads)
        except httpx.HTTPStatusError as exc:
            if _code(_json(exc.response)) != "asset_not_found" or not any(u.reused for u in uploads.values()):
                raise
        # A kept upload HeyGen no longer knows (deleted there): send the media again; the refusal was not billed.
        return self._generate(spec, card, self._uploads(spec, card, again=True))

    def _uploads(self, spec: AssetSpec, card: ModelCard, again: bool = False) -> dict[str, Upload]:
        """HeyGen's asset for each input it needs: the audio (unless option asset_id names one), the portrait."""
        wanted = {"portrait"} if "asset_id" in card.settings(spec) else {"audio", "portrait"}
        return {ref.role: self._upload(ref, again) for ref in spec.inputs if ref.role in wanted}

    def _upload(self, ref: InputRef, again: bool) -> Upload:
        data, mime = _media(ref)

        def send() -> tuple[str, dict[str, str]]:
            answer = self.request(
                "POST", f"{self.upload_url}/v1/asset", content=data, headers={"Content-Type": mime}
            ).json()
            asset = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(asset, dict) or not isinstance(asset.get("id"), str):
                raise ProviderError(
                    ErrorKind.generation_failed, "upload answered without an asset id", provider=NAME
                )
            key = asset.get("image_key")
            return asset["id"], {"image_key": key} if isinstance(key, str) else {}

        return uploaded(NAME, data, mime, send, again=again)

    def _generate(self, spec: AssetSpec, card: ModelCard, uploads: dict[str, Upload]) -> str:
        options = card.settings(spec)
        audio = str(options["asset_id"]) if "asset_id" in options else uploads["audio"].asset_id
        title = (spec.prompt or "Cutroom scene")[:TITLE_CHARS]
        if card.model == "avatar-iv":
            portrait = uploads["portrait"]
            body: dict[str, Any] = {
                "image_key": portrait.details.get("image_key", portrait.asset_id),
                "video_title": title,
                "audio_asset_id": audio,
                "video_orientation": ORIENTATIONS[named_ratio(spec, ORIENTATIONS) or "16:9"],
            }
            if "fit" in options:
                body["fit"] = options["fit"]
            path = "/v2/video/av4/generate"
        else:
            character = {"type": "talking_photo", "talking_photo_id": options["talking_photo_id"]}
            if "talking_style" in options:
                character["talking_style"] = options["talking_style"]
            width, height = asked_size(spec) or (1280, 720)
            body = {
                "video_inputs": [
                    {"character": character, "voice": {"type": "audio", "audio_asset_id": audio}}
                ],
                "dimension": {"width": _side(width), "height": _side(height)},
                "title": title,
            }
            path = "/v2/video/generate"
        answer = self.request("POST", path, json=body).json()
        data = answer.get("data") if isinstance(answer, dict) else None
        video_id = data.get("video_id") if isinstance(data, dict) else None
        return video_id if isinstance(video_id, str) else ""

    # -- the account -------------------------------------------------------------------------------------------

    def talking_photos(self) -> frozenset[str]:
        """The talking photos the account holds (`GET /v2/avatars`), listed once per process: a script naming one
        it lacks is refused before its voice is paid for. The list is free to read, so a passing fault is simply
        asked again (a few times, then it goes up)."""
        with self._photos_lock:
            if self._photos is None:
                self._photos = self._list_talking_photos()
            return self._photos

    def _list_talking_photos(self) -> frozenset[str]:
        for attempt in range(1, LIST_TRIES + 1):
            try:
                with self.calling("listing talking photos"):
                    answer = self.request("GET", "/v2/avatars").json()
                break
            except ProviderError as exc:
                if not exc.kind.transient or attempt == LIST_TRIES:
                    raise
                pause = exc.retry_after or 0.5 * 2 ** (attempt - 1)
                stopping.sleep(pause * min(1.0, self.time_scale * 100))
        data = answer.get("data") if isinstance(answer, dict) else None
        listed = data.get("talking_photos") if isinstance(data, dict) else None
        if not isinstance(listed, list):
            raise ProviderError(
                ErrorKind.generation_failed,
                "listing talking photos: answer without talking_photos",
                provider=NAME,
            )
        return frozenset(
            photo["talking_photo_id"]
            for photo in listed
            if isinstance(photo, dict) and isinstance(photo.get("talking_photo_id"), str)
        )

    # -- the job -----------------------------------------------------------------------------------------------

    def _video(self, job: JobRef) -> dict[str, Any]:
        answer = self.request("GET", "/v1/video_status.get", params={"video_id": job.job_id}).json()
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            raise ProviderError(ErrorKind.generation_failed, "poll: answer without data", provider=NAME)
        return data

    def status(self, job: JobRef) -> JobStatus:
        data = self._video(job)
        state = data.get("status")
        if state == "completed":
            if not isinstance(data.get("video_url"), str):
                return JobStatus(state=JobState.FAILED, error="completed without a video_url")
            self._ready[job.job_id] = data["video_url"]
            return JobStatus(state=JobState.SUCCEEDED, progress=1.0)
        if state == "failed":
            error = data.get("error") if isinstance(data.get("error"), dict) else {}
            reason = " ".join(str(error[k]) for k in ("code", "message", "detail") if error.get(k))
            reason = reason or "failed without a reason"
            return JobStatus(state=JobState.FAILED, error=reason, error_kind=failure_kind(reason))
        if state in ("pending", "waiting"):
            return JobStatus(state=JobState.PENDING, progress=0.0)
        return JobStatus(state=JobState.RUNNING)  # processing, or a state newer than this adapter

    def result(self, job: JobRef) -> Output:
        url = self._ready.pop(job.job_id, None)
        if url is None:  # another process polled it: a status call hands out a fresh link
            data = self._video(job)
            if data.get("status") != "completed" or not isinstance(data.get("video_url"), str):
                raise ProviderError(
                    ErrorKind.not_found,
                    f"video {job.job_id} has no output (status {data.get('status')})",
                    provider=NAME,
                )
            url = data["video_url"]
        return self.download(url)


def _refusal(message: str) -> ProviderError:
    return ProviderError(ErrorKind.invalid_input, message, provider=NAME)


def _code(body: Any) -> str | int | None:
    """HeyGen's error code: v2's `error.code` (a word), v1's `code` (a number)."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    return error.get("code") if isinstance(error, dict) else body.get("code")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _side(pixels: int) -> int:
    """A side HeyGen's dimension takes: even, 128 to 4096."""
    return min(SIDE[1], max(SIDE[0], pixels - pixels % 2))


def _check_local(ref: InputRef) -> None:
    """A local voice or portrait HeyGen would refuse is refused here, before anything is paid for."""
    if ref.role == "audio":
        _, mime = checked_file(ref, NAME, ("audio",), MAX_AUDIO_BYTES)
        if mime not in AUDIO_FORMATS:
            raise _refusal(f"HeyGen takes mp3 or wav audio; the audio input is {mime}")
    else:
        checked_file(ref, NAME, ("image",), MAX_IMAGE_BYTES)


def _media(ref: InputRef) -> tuple[bytes, str]:
    """An input's bytes as HeyGen takes them: mp3 or wav audio; a jpeg or png as it is, another image as png."""
    if ref.role == "audio":
        data, mime = upload_media(ref, NAME, ("audio",), MAX_AUDIO_BYTES)
        if mime not in AUDIO_FORMATS:
            raise _refusal(f"HeyGen takes mp3 or wav audio; the audio input is {mime}")
        return data, mime
    data, mime = upload_media(ref, NAME, ("image",), MAX_IMAGE_BYTES)
    if mime in IMAGE_FORMATS:
        return data, mime
    with Image.open(io.BytesIO(data)) as picture:
        return png_bytes(picture), "image/png"


def _audio_seconds(spec: AssetSpec) -> float | None:
    """The length of a spec's local audio input, or None (no local audio, or unreadable: check says why)."""
    ref = next((r for r in spec.inputs if r.role == "audio" and r.uri.startswith("file:")), None)
    if ref is None:
        return None
    try:
        path, _ = checked_file(ref, NAME, ("audio",), MAX_AUDIO_BYTES)
        return probe(path).duration_s
    except (ProviderError, MediaError):
        return None
