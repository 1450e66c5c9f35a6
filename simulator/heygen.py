"""HeyGen's avatar API (docs.heygen.com, v1/v2, 2025-26), as plain HTTP clients call it: there is no SDK.

Covered: `POST /upload/v1/asset` (upload.heygen.com, mounted here under `/upload`): raw bytes with their
Content-Type (image/jpeg, image/png, audio/mpeg, audio/wav, video/mp4, video/webm) answered
`{"code": 100, "data": {"id", "name", "file_type", "url", "image_key"?, …}}`; `POST /v2/video/generate` with one or
more scenes of a talking photo and an audio voice (`audio_asset_id`) at a `dimension`; `POST /v2/video/av4/generate`
(Avatar IV from an uploaded image's `image_key` and an audio asset, at a `video_orientation`); both answered
`{"error": null, "data": {"video_id"}}`; `GET /v1/video_status.get?video_id=` answering
`{"code": 100, "data": {"id", "status", "video_url", "duration", "error", …}}`; `GET /v2/user/remaining_quota`;
`GET /v2/avatars` (no avatars, the account's talking photos).
The key in `X-Api-Key`; assets and videos belong to the key that made them (another key's are not found).

Videos run on the simulator's clock (simulator.jobs): pending, processing, then completed with a real mp4 at an
expiring link (the talking photo or portrait animated, with the voice's own audio, as long as it) or failed with
`error: {code, message, detail}`. Stand-in clips are rendered small (the right shape, a real codec) so tests stay
fast. A talking photo id of the shape `unknown…` is one the account does not have: generate refuses it, and
`GET /v2/avatars` lists TALKING_PHOTOS. (u) Generate renders any other id, listed or not, so a contract row may
name a presenter of its own; a flow that checks the list first accepts only the listed ones.

Errors: v2 routes answer `{"error": {"code", "message"}, "data": null}`; v1 routes `{"code": <int>, "message",
"data": null}`. `POST /heygen/_sim/quota {"remaining_quota": seconds}` empties or fills the account's credit.
Unverified (u): every message text and numeric code; the key shapes; 400 `talking_photo_not_found` and
`asset_not_found` for ids the account lacks (heygen.md lists only `avatar_not_found`, `voice_not_found`);
402 `insufficient_credit` when the voice is longer than the remaining credit; the failure codes of a moderated
input or output (heygen.md documents none); the upload size caps; the Avatar IV output sizes.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from cutroom.media import MediaError, probe, run_ffmpeg
from simulator import media
from simulator.core import Simulator
from simulator.jobs import Phase, SimJob, start_job
from simulator.outputs import Hosted

VENDOR = "heygen"
PREFIX = "/heygen"
UPLOAD = "/upload"
#: (u) HeyGen's newer keys ("sk_V2_hgu_…") and its older base64-looking ones.
KEY = re.compile(r"^(sk_V2_hgu_[A-Za-z0-9_]{20,}|[A-Za-z0-9+/]{32,}={0,2})$")
FILE_TYPES = {
    "image/jpeg": "image",
    "image/png": "image",
    "audio/mpeg": "audio",
    "audio/wav": "audio",
    "audio/x-wav": "audio",
    "video/mp4": "video",
    "video/webm": "video",
}
#: (u) heygen.md: images up to ~10 MB; no cap is given for audio or video.
MAX_BYTES = {"image": 10 * 1024 * 1024, "audio": 50 * 1024 * 1024, "video": 100 * 1024 * 1024}
TALKING_PHOTO = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
UNKNOWN_TALKING_PHOTO = "unknown"
#: The talking photos the account lists (HeyGen's sample naming: name_outfit_date).
TALKING_PHOTOS = ("Monica_inSleeveless_20220819", "Daisy_inShirt_20220818", "Presenter_Studio_20240101")
MAX_SCENES = 50
SIDE = (128, 4096)
DEFAULT_DIMENSION = {"width": 1920, "height": 1080}
#: (u) Avatar IV's output shapes by video_orientation.
ORIENTATIONS = {"landscape": (1280, 720), "portrait": (720, 1280), "square": (720, 720)}
FITS = ("cover", "contain")
TALKING_PHOTO_LATENCY_S = 90.0
AVATAR_IV_LATENCY_S = 180.0
STARTING_QUOTA_S = 36000.0
STATUS = {
    Phase.queued: "pending",
    Phase.running: "processing",
    Phase.succeeded: "completed",
    Phase.failed: "failed",
    Phase.moderated_input: "failed",
    Phase.moderated_output: "failed",
}
#: (u) The error a failed video carries.
FAILURES = {
    Phase.failed: {
        "code": 40010,
        "message": "Video rendering failed",
        "detail": "Internal error, please retry",
    },
    Phase.moderated_input: {
        "code": 40050,
        "message": "Content moderation",
        "detail": "The input photo or audio violates HeyGen's content moderation policy",
    },
    Phase.moderated_output: {
        "code": 40051,
        "message": "Content moderation",
        "detail": "The generated video was flagged by content moderation",
    },
}
RENDER_SHORT_SIDE = 360
FPS = 25
#: HeyGen's output links last 7 days (heygen.md).
LINK_LIFETIME_S = 7 * 24 * 3600.0
ERROR_CODES = {401: "unauthorized", 402: "insufficient_credit", 404: "not_found", 429: "rate_limit_exceeded"}


def error_response(
    status: int, message: str, retry_after: float | None = None, code: str | None = None
) -> Response:
    """HeyGen's v2 error body, `{"error": {"code", "message"}, "data": null}`, with Retry-After when there is one."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    code = code or ERROR_CODES.get(status, "invalid_parameter" if status < 500 else "internal_error")
    body = {"error": {"code": code, "message": message}, "data": None}
    return JSONResponse(body, status_code=status, headers=headers)


def v1_error(status: int, code: int, message: str) -> Response:
    """HeyGen's v1 error body, `{"code": <int>, "message", "data": null}`."""
    return JSONResponse({"code": code, "message": message, "data": None}, status_code=status)


class Invalid(Exception):
    """A request HeyGen refuses: answered 400 (or `status`) with its code."""

    def __init__(self, message: str, code: str = "invalid_parameter", status: int = 400):
        self.message, self.code, self.status = message, code, status

    def response(self) -> Response:
        return error_response(self.status, self.message, code=self.code)


@dataclass
class Asset:
    id: str
    key: str
    file_type: str
    mime: str
    data: bytes
    duration_s: float | None = None
    image_key: str | None = None


@dataclass
class Video:
    job: SimJob
    key: str
    width: int
    height: int
    duration_s: float


@dataclass
class Account:
    assets: dict[str, Asset] = field(default_factory=dict)
    videos: dict[str, Video] = field(default_factory=dict)
    remaining_quota_s: float = STARTING_QUOTA_S
    lock: threading.Lock = field(default_factory=threading.Lock)


def audio_length(data: bytes) -> float | None:
    """The seconds of audio in an upload, or None when its bytes are not audio."""
    with tempfile.TemporaryDirectory(prefix="cutroom-sim-heygen-") as tmp:
        path = Path(tmp) / "audio"
        path.write_bytes(data)
        try:
            info = probe(path)
        except MediaError:
            return None
    return info.duration_s if info.has_audio and info.duration_s else None


def render_size(width: int, height: int) -> tuple[int, int]:
    """The asked shape at RENDER_SHORT_SIDE, even sides."""
    scale = RENDER_SHORT_SIDE / min(width, height)
    return round(width * scale / 2) * 2, round(height * scale / 2) * 2


def talking_clip(prompt: str, width: int, height: int, voice: Asset, face: bytes | None) -> bytes:
    """A real mp4 of the face (or a still of the prompt) animated as long as the voice, with the voice on it."""
    duration = voice.duration_s or 1.0
    silent = media.clip(prompt, width, height, duration, FPS, start=face)
    with tempfile.TemporaryDirectory(prefix="cutroom-sim-heygen-") as tmp:
        picture, sound, out = Path(tmp) / "v.mp4", Path(tmp) / "a", Path(tmp) / "out.mp4"
        picture.write_bytes(silent)
        sound.write_bytes(voice.data)
        run_ffmpeg(["-i", str(picture), "-i", str(sound), "-map", "0:v", "-map", "1:a", "-c:v", "copy",
                    "-c:a", "aac", "-t", f"{duration:.3f}", str(out)], what="adding the voice")  # fmt: skip
        return out.read_bytes()


def even_side(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value % 2 or not SIDE[0] <= value <= SIDE[1]:
        raise Invalid(f"dimension.{name} must be an even integer between {SIDE[0]} and {SIDE[1]}")
    return value


def router(sim: Simulator) -> APIRouter:
    account = Account()
    sim.keeps_fresh(account, Account)
    api = APIRouter()
    hosted = Hosted(sim, PREFIX)
    hosted.route(api)

    def caller(request: Request) -> str | Response:
        key = request.headers.get("x-api-key")
        if not key:
            return error_response(401, "Missing API key")
        return key if KEY.match(key) else error_response(401, "Invalid API key")

    def audio_of(key: str, asset_id: Any, name: str) -> Asset:
        if not isinstance(asset_id, str) or not asset_id:
            raise Invalid(f"{name} must be an asset id")
        asset = account.assets.get(asset_id)
        if asset is None or asset.key != key:
            raise Invalid(f"Asset {asset_id} not found", code="asset_not_found")
        if asset.file_type != "audio":
            raise Invalid(f"Asset {asset_id} is not an audio asset")
        return asset

    def voice_of(key: str, voice: Any) -> Asset:
        if not isinstance(voice, dict) or voice.get("type") not in ("text", "audio", "silence"):
            raise Invalid("voice.type must be one of text, audio, silence")
        if voice["type"] != "audio" or "audio_asset_id" not in voice:
            raise Invalid("only audio voices with audio_asset_id are simulated")  # (u) a simulator limit
        return audio_of(key, voice["audio_asset_id"], "voice.audio_asset_id")

    def scene(key: str, index: int, value: Any) -> tuple[str, Asset]:
        """A video_inputs entry's talking photo id and voice."""
        if not isinstance(value, dict):
            raise Invalid(f"video_inputs[{index}] must be an object")
        character = value.get("character")
        if not isinstance(character, dict) or character.get("type") not in ("avatar", "talking_photo"):
            raise Invalid(f"video_inputs[{index}].character.type must be avatar or talking_photo")
        if character["type"] == "avatar":
            raise Invalid("only talking_photo characters are simulated")  # (u) a simulator limit
        photo = character.get("talking_photo_id")
        if not isinstance(photo, str) or not TALKING_PHOTO.match(photo):
            raise Invalid(f"video_inputs[{index}].character.talking_photo_id is required")
        if photo.startswith(UNKNOWN_TALKING_PHOTO):
            raise Invalid(f"Talking photo {photo} not found", code="talking_photo_not_found")
        style = character.get("talking_style", "stable")
        if style not in ("stable", "expressive"):
            raise Invalid(f"video_inputs[{index}].character.talking_style must be stable or expressive")
        return photo, voice_of(key, value.get("voice"))

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise Invalid("The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Invalid("The request body must be a JSON object")
        return body

    def started(key: str, latency_s: float, body: dict[str, Any], size: tuple[int, int], prompt: str,
                voice: Asset, face: bytes | None) -> Response:  # fmt: skip
        """A video accepted: its credit taken, its job on the clock, its mp4 at a link from when it ends."""
        with account.lock:
            seconds = voice.duration_s or 1.0
            if account.remaining_quota_s < seconds:
                raise Invalid("Insufficient credit to generate this video", "insufficient_credit", 402)
            account.remaining_quota_s -= seconds
            job = start_job(sim, VENDOR, latency_s, body, job_id=uuid.uuid4().hex)
            width, height = render_size(*size)
            account.videos[job.id] = Video(job, key, width, height, seconds)
        hosted.put(
            f"{job.id}.mp4",
            lambda: talking_clip(prompt, width, height, voice, face),
            "video/mp4",
            shape=(VENDOR, width, height, seconds),
            ready_at=job.ends,
            fault=job.fault,
            lifetime_s=LINK_LIFETIME_S,
        )
        return JSONResponse({"error": None, "data": {"video_id": job.id}})

    @api.post(UPLOAD + "/v1/asset")
    async def upload(request: Request) -> Response:
        key = caller(request)
        if isinstance(key, Response):
            return key
        mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
        file_type = FILE_TYPES.get(mime)
        if file_type is None:
            return v1_error(
                400, 400100, f"Unsupported Content-Type {mime or 'none'}: {', '.join(FILE_TYPES)}"
            )
        data = await request.body()
        if not data:
            return v1_error(400, 400101, "The request body is empty")
        if len(data) > MAX_BYTES[file_type]:
            return v1_error(400, 400102, f"The file is larger than {MAX_BYTES[file_type] // 2**20} MB")
        duration = None
        if file_type == "audio" and (duration := audio_length(data)) is None:
            return v1_error(400, 400103, "The audio file could not be decoded")
        if file_type == "image" and media.image_size(data) is None:
            return v1_error(400, 400103, "The image file could not be decoded")
        asset_id = uuid.uuid4().hex
        image_key = f"image/{asset_id}/original" if file_type == "image" else None
        with account.lock:
            account.assets[asset_id] = Asset(asset_id, key, file_type, mime, data, duration, image_key)
        answer: dict[str, Any] = {
            "id": asset_id,
            "name": asset_id,
            "file_type": file_type,
            "folder_id": "",
            "meta": None,
            "created_ts": int(time.time()),
            "url": f"https://resource2.heygen.ai/{file_type}/{asset_id}/original",
        }
        if image_key:
            answer["image_key"] = image_key
        return JSONResponse({"code": 100, "data": answer, "msg": None, "message": None})

    @api.post("/v2/video/generate")
    async def generate(request: Request) -> Response:
        key = caller(request)
        if isinstance(key, Response):
            return key
        try:
            body = await body_of(request)
            scenes = body.get("video_inputs")
            if not isinstance(scenes, list) or not 1 <= len(scenes) <= MAX_SCENES:
                raise Invalid(f"video_inputs must be a list of 1 to {MAX_SCENES} scenes")
            made = [scene(key, i, s) for i, s in enumerate(scenes)]
            dimension = body.get("dimension", DEFAULT_DIMENSION)
            if not isinstance(dimension, dict):
                raise Invalid("dimension must be an object with width and height")
            size = even_side("width", dimension.get("width")), even_side("height", dimension.get("height"))
            photo, voice = made[0]  # (u) the simulator renders the first scene
            return started(key, TALKING_PHOTO_LATENCY_S, body, size, f"talking photo {photo}", voice, None)
        except Invalid as exc:
            return exc.response()

    @api.post("/v2/video/av4/generate")
    async def avatar_iv(request: Request) -> Response:
        key = caller(request)
        if isinstance(key, Response):
            return key
        try:
            body = await body_of(request)
            image_key = body.get("image_key")
            face = next(
                (a for a in account.assets.values() if a.image_key == image_key and a.key == key), None
            )
            if not isinstance(image_key, str) or face is None:
                raise Invalid(f"image_key {image_key!r} is not an uploaded image", code="asset_not_found")
            if not isinstance(body.get("video_title"), str) or not body["video_title"]:
                raise Invalid("video_title is required")
            if "audio_asset_id" not in body:
                raise Invalid("only audio_asset_id voices are simulated")  # (u) a simulator limit
            voice = audio_of(key, body["audio_asset_id"], "audio_asset_id")
            orientation = body.get("video_orientation", "landscape")
            if orientation not in ORIENTATIONS:
                raise Invalid(f"video_orientation must be one of {', '.join(ORIENTATIONS)}")
            if body.get("fit", "cover") not in FITS:
                raise Invalid("fit must be cover or contain")
            size = ORIENTATIONS[orientation]
            return started(key, AVATAR_IV_LATENCY_S, body, size, body["video_title"], voice, face.data)
        except Invalid as exc:
            return exc.response()

    @api.get("/v1/video_status.get")
    async def status(request: Request) -> Response:
        key = caller(request)
        if isinstance(key, Response):
            return key
        video = account.videos.get(request.query_params.get("video_id", ""))
        if video is None or video.key != key:
            return v1_error(404, 400104, "Video not found")
        phase = video.job.phase()
        data: dict[str, Any] = {
            "id": video.job.id, "status": STATUS[phase], "video_url": None, "video_url_caption": None,
            "thumbnail_url": None, "gif_url": None, "caption_url": None, "duration": None, "callback_id": None,
            "created_at": int(time.time() - (time.monotonic() - video.job.created)), "error": None,
        }  # fmt: skip
        if phase is Phase.succeeded:
            data |= {"video_url": hosted.url(request, f"{video.job.id}.mp4"), "duration": video.duration_s}
        elif phase in FAILURES:
            data["error"] = FAILURES[phase]
        return JSONResponse({"code": 100, "message": "Success", "data": data})

    @api.get("/v2/avatars")
    async def avatars(request: Request) -> Response:
        key = caller(request)
        if isinstance(key, Response):
            return key
        photos = [
            {"talking_photo_id": photo, "talking_photo_name": photo.split("_")[0],
             "preview_image_url": f"https://files2.heygen.ai/talking_photo/{photo}/preview.webp"}
            for photo in TALKING_PHOTOS
        ]  # fmt: skip
        return JSONResponse({"error": None, "data": {"avatars": [], "talking_photos": photos}})

    @api.get("/v2/user/remaining_quota")
    async def remaining_quota(request: Request) -> Response:
        key = caller(request)
        if isinstance(key, Response):
            return key
        return JSONResponse({"error": None, "data": {"remaining_quota": int(account.remaining_quota_s)}})

    @api.post("/_sim/quota")
    async def set_quota(changes: dict[str, float]) -> dict[str, float]:
        with account.lock:
            account.remaining_quota_s = float(changes.get("remaining_quota", account.remaining_quota_s))
        return {"remaining_quota": account.remaining_quota_s}

    return api
