"""Runware's task-array REST API (`POST https://api.runware.ai/v1`), image and video inference as Cutroom uses them.

One endpoint takes a JSON array of tasks and answers `{"data": [...], "errors": [...]}`, each item matched to its task
by `taskUUID` (a client UUID v4); one answer may hold both keys. Covered: `authentication` (or a Bearer header),
`imageInference` delivered sync (the answer waits for the images) or async (an ack, then `getResponse` polls
`processing` -> `success` items or an error item), outputs as URL on a CDN through Hosted, base64Data or dataURI. A
task UUID is single-use: sending one again gets `conflictTaskUUID`, and its results stay readable with `getResponse`
(the SDK recovers a retried create that way).

`videoInference` (async only): a model of VIDEO_MODELS at one of its sizes and lengths, `frameImages` of
`{inputImage, frame: first|last}` as the model takes them (a first frame decoded from a data URI or fetched from a
loopback link starts the clip), an ack, then `getResponse` items `processing` until `success` with `videoUUID`,
`videoURL` and, with includeCost, `cost` (the SDK's IVideo); a failure is an error item. Real MP4 clips of the
asked size and length are rendered on first download. A task of either kind delivered async with `webhookURL` has
its end POSTed there once, off the request path, as getResponse would then answer it: `{"data": [result item]}`
("the same format as synchronous responses", the SDK's README) or `{"errors": [error item]}`; an unreachable
receiver changes nothing.

Sources: ../shared/providers/runware.md; the `runware` 0.5.24 SDK (types.IImageInference / IImage wire names,
`safety.checkContent` replacing the deprecated `checkNSFW`, `conflictTaskUUID`, `missingApiKey`, getResponse status
values); runware.ai/docs platform pages "Errors" (envelope, fields, 400/401/402/403/404 statuses), "Task Polling"
(processing/success/error), "Rate Limits" (429/503/504), model pages (outputQuality 20-99, HiDream $0.009/image,
`width` and `height` used together). Unverified (u): the codes other than invalidApiKey / insufficientCredits /
timeoutProvider / conflictTaskUUID (named by pattern from invalidPositivePrompt / invalidModel), the HTTP status of
an answer holding only provider or moderation errors, the ranges of steps / CFGScale / seed / numberResults, prices,
the ack's shape, and what a REST `authentication` task answers; for video, the AIR ids, sizes, lengths, frame
rates and prices of VIDEO_MODELS, the error codes of a bad video field (named by pattern), the code of a clip
blocked after it was made (OUTPUT_MODERATED), and that video is refused with sync delivery; for webhooks, a failed
task's body, the status in a posted item, that a post is unsigned, and that it is sent once (Runware retries a post
its receiver did not answer with a 2xx; not simulated).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from simulator.core import Fault, Simulator, outbound_tls
from simulator.jobs import JOB_FAULTS, SimJob, start_job
from simulator.media import MIME, FetchFailed, clip, data_uri, fetch_local, image_size, still
from simulator.outputs import Hosted

VENDOR = "runware"
PREFIX = "/runware"
#: Runware keys are 32 letters and digits (u); any key of that shape is accepted.
SIMULATOR_KEY = "RwSimulatorKey0123456789abcdefAB"
KEY_RE = re.compile(r"^[A-Za-z0-9]{32}$")
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)
Size = tuple[int, int]
AIR_RE = re.compile(r"^[a-z0-9_-]+:[\w.-]+@[\w.-]+$")
DOCS = "https://runware.ai/docs/image-inference/api-reference"
INVALID_KEY = "Invalid API key. Get one at https://my.runware.ai/signup"  # docs: "Errors"
OUTPUT_TYPES = ("URL", "base64Data", "dataURI")
OUTPUT_FORMATS = {"JPG": "jpg", "PNG": "png", "WEBP": "webp"}
#: HTTP status of an answer that holds only errors, by the first error's code (docs: "Errors"; (u) beyond them).
STATUS = {"invalidApiKey": 401, "missingApiKey": 401, "insufficientCredits": 402, "taskNotFound": 404,
          "timeoutProvider": 500}  # fmt: skip
#: Codes for the frame's injected transport answers (u).
TRANSPORT_CODES = {429: "tooManyRequests", 503: "serviceUnavailable", 504: "timeoutQueue"}


@dataclass(frozen=True)
class Model:
    name: str
    latency_s: float
    #: (u) but from the models' pages where known: USD per 1024x1024 image, scaled by megapixels.
    usd: float


MODELS = {
    "runware:100@1": Model("FLUX.1 [schnell]", 1.0, 0.0013),
    "runware:101@1": Model("FLUX.1 [dev]", 3.0, 0.0038),
    "runware:111@1": Model("FLUX.1 [dev] SRPO", 3.0, 0.0038),
    "runware:400@1": Model("FLUX.2 [dev]", 5.0, 0.0096),
    "runware:97@1": Model("HiDream-I1 Full", 6.0, 0.009),
}


@dataclass(frozen=True)
class VideoModel:
    name: str
    latency_s: float
    #: (u) USD per second of clip, at the one resolution tier each model is offered in here.
    usd_per_s: float
    sizes: tuple[Size, ...]
    durations: tuple[float, ...]
    fps: tuple[int, ...]
    #: Frames it takes ("first", "last"); whether it makes nothing without a first frame.
    frames: tuple[str, ...] = ("first",)
    needs_first: bool = False


#: (u) AIR ids, sizes, lengths and frame rates as Runware's provider pages were remembered; prices guessed.
VIDEO_MODELS = {
    "bytedance:1@1": VideoModel(
        "Seedance 1.0 Lite", 60.0, 0.036,
        ((1248, 704), (1120, 832), (960, 960), (832, 1120), (704, 1248), (1504, 640), (640, 1504)),
        (5.0, 10.0), (24,), frames=("first", "last"),
    ),
    "bytedance:2@1": VideoModel(
        "Seedance 1.0 Pro", 90.0, 0.125,
        ((1920, 1088), (1664, 1248), (1440, 1440), (1248, 1664), (1088, 1920), (2176, 928), (928, 2176)),
        (5.0, 10.0), (24,),
    ),
    "klingai:5@1": VideoModel(
        "Kling 2.1 Standard", 150.0, 0.0504, ((1280, 720), (720, 720), (720, 1280)), (5.0, 10.0), (24,),
        needs_first=True,
    ),
    "klingai:5@2": VideoModel(
        "Kling 2.1 Pro", 180.0, 0.09, ((1920, 1080), (1080, 1080), (1080, 1920)), (5.0, 10.0), (24,),
        frames=("first", "last"), needs_first=True,
    ),
    "google:3@1": VideoModel("Veo 3 Fast", 60.0, 0.1, ((1280, 720), (720, 1280)), (8.0,), (24,)),
    "minimax:3@1": VideoModel("MiniMax Hailuo 02", 120.0, 0.045, ((1366, 768),), (6.0, 10.0), (25,)),
}  # fmt: skip
#: Runware also makes WEBM; the renderer makes MP4 only, so WEBM is refused here (not at Runware).
VIDEO_FORMATS = {"MP4": "mp4"}
#: (u) The code of a clip the provider's moderation blocked after it was made.
OUTPUT_MODERATED = "outputContentModerated"
#: Hosts whose links a start frame is fetched from (the test S3 endpoint); others are not fetched (offline).
#: Integer and number ranges of imageInference fields (u except outputQuality, from the model pages).
INT_RANGES = {"steps": (1, 100), "seed": (1, 2**63 - 1), "numberResults": (1, 20), "outputQuality": (20, 99)}
NUMBER_RANGES = {"CFGScale": (0, 50), "strength": (0, 1)}


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """Runware's envelope `{"errors": [{code, message}]}`, with Retry-After when there is one."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    code = TRANSPORT_CODES.get(status, "internalServerError")
    return JSONResponse({"errors": [{"code": code, "message": message}]}, status_code=status, headers=headers)


def _error(code: str, message: str, task: dict[str, Any] | None = None, parameter: str | None = None,
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    item: dict[str, Any] = {"code": code, "message": message}
    if parameter:
        item.update(parameter=parameter, documentation=DOCS)
    for name in ("taskType", "taskUUID"):
        if task and task.get(name) is not None:
            item[name] = task[name]
    return {**item, **extra}


def _invalid(task: dict[str, Any], parameter: str, detail: str) -> dict[str, Any]:
    """A parameter refusal, coded like the documented invalidPositivePrompt / invalidModel."""
    message = f"{detail}"
    return _error(f"invalid{parameter[0].upper()}{parameter[1:]}", message, task, parameter)


def _webhook_problem(task: dict[str, Any]) -> dict[str, Any] | None:
    if "webhookURL" in task and not re.match(r"^https?://[^\s/]+", str(task["webhookURL"])):
        return _invalid(task, "webhookURL", "it must be an http(s) URL.")
    return None


def _image_problem(value: Any, known: set[str]) -> str | None:
    """An input image may be a UUID Runware holds, an http(s) URL (not fetched: offline), a data URI or raw base64
    of an image; anything else is refused."""
    if not isinstance(value, str) or not value:
        return "must be a UUID, URL, data URI or base64 string of an image"
    if UUID4_RE.match(value):
        return None if value in known else f"names image {value}, which was not found"
    if re.match(r"^https?://[^\s/]+", value):
        return None
    if value.startswith("data:"):
        decoded = data_uri(value)
        data = decoded[1] if decoded and decoded[0].startswith("image/") else None
    else:
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            data = None
    return None if data is not None and image_size(data) is not None else "is not a readable image"


async def _start_image(value: Any) -> bytes | None:
    """A first frame's bytes to start the clip from: a data URI's, raw base64's, or a loopback link's (the test
    S3 endpoint, as Runware fetches a presigned link); other links are not fetched (offline)."""
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        try:
            data = await fetch_local(value)
        except FetchFailed:
            return None
        if data is None:
            return None
    elif (decoded := data_uri(value)) is not None:
        data = decoded[1]
    else:
        try:
            data = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            return None
    return data if image_size(data) else None


@dataclass
class Task:
    uuid: str
    body: dict[str, Any]
    job: SimJob | None = None
    images: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    extension: str = "jpg"
    cost: float = 0.0
    error: dict[str, Any] | None = None
    #: A videoInference task's clip, by its videoUUID.
    video: str | None = None


@dataclass
class State:
    credits: float = 1000.0
    tasks: dict[str, Task] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def router(sim: Simulator) -> APIRouter:
    state = State()

    def forget() -> None:
        with state.lock:  # a reset starts the account afresh: task UUIDs of an earlier test are free again
            state.tasks.clear()
            state.credits = State().credits

    sim.on_reset(forget)
    api = APIRouter()
    cdn = Hosted(sim, PREFIX)
    webhooks: set[asyncio.Task[None]] = set()

    def known_images() -> set[str]:
        return {image for task in state.tasks.values() for image in task.images}

    def validate(task: dict[str, Any]) -> dict[str, Any] | None:
        """The first problem with an imageInference task, as its error item."""
        model = task.get("model")
        if model not in MODELS:
            hint = "" if isinstance(model, str) and AIR_RE.match(model) else " (an AIR id like runware:100@1)"
            return _invalid(task, "model", f"{model!r} is not an available model{hint}.")
        for name in ("positivePrompt", "negativePrompt"):
            text = task.get(name)
            required = name == "positivePrompt"
            if (required or text is not None) and (
                not isinstance(text, str) or not 2 <= len(text.strip()) <= 3000
            ):
                return _invalid(task, name, "it must be 2 to 3000 characters.")
        for name in ("width", "height"):
            side = task.get(name)
            if type(side) is not int or not 128 <= side <= 2048 or side % 64:
                return _invalid(
                    task, name, "width and height go together, each a multiple of 64 from 128 to 2048."
                )
        for name, (low, high) in (*INT_RANGES.items(), *NUMBER_RANGES.items()):
            value, kinds = task.get(name), (int if name in INT_RANGES else int | float)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high
            ):
                return _invalid(task, name, f"it must be from {low} to {high}.")
        types = task.get("outputType", "URL")
        if not all(t in OUTPUT_TYPES for t in (types if isinstance(types, list) else [types])):
            return _invalid(task, "outputType", f"it must be one of {', '.join(OUTPUT_TYPES)}.")
        if str(task.get("outputFormat", "JPG")).upper() not in OUTPUT_FORMATS:
            return _invalid(task, "outputFormat", f"it must be one of {', '.join(OUTPUT_FORMATS)}.")
        if task.get("deliveryMethod", "sync") not in ("sync", "async"):
            return _invalid(task, "deliveryMethod", "it must be sync or async.")
        for name in ("checkNSFW", "includeCost"):
            if name in task and not isinstance(task[name], bool):
                return _invalid(task, name, "it must be a boolean.")
        return _webhook_problem(task) or image_inputs(task)

    def image_inputs(task: dict[str, Any]) -> dict[str, Any] | None:
        """seedImage, maskImage and referenceImages, at the top level or (newer models) under `inputs`."""
        known = known_images()
        inputs = task.get("inputs") if isinstance(task.get("inputs"), dict) else {}
        for name, value in (("seedImage", task.get("seedImage")), ("maskImage", task.get("maskImage")),
                            ("seedImage", inputs.get("seedImage"))):  # fmt: skip
            if value is not None and (problem := _image_problem(value, known)):
                return _invalid(task, name, f"it {problem}.")
        for refs in (task.get("referenceImages"), inputs.get("referenceImages")):
            if refs is not None and not isinstance(refs, list):
                return _invalid(task, "referenceImages", "it must be an array of images.")
            for ref in refs or []:
                image = ref.get("image") if isinstance(ref, dict) else ref
                if problem := _image_problem(image, known):
                    return _invalid(task, "referenceImages", f"an image {problem}.")
        return None

    def checks_content(body: dict[str, Any]) -> bool:
        safety = body.get("safety")
        return bool(body.get("checkNSFW")) or (isinstance(safety, dict) and bool(safety.get("checkContent")))

    async def results(request: Request, task: Task, polled: bool) -> list[dict[str, Any]]:
        """The finished task's image items, rendering inline outputs off the event loop."""
        body = task.body
        types = body.get("outputType", "URL")
        types = types if isinstance(types, list) else [types]
        items = []
        for image_uuid, seed in zip(task.images, task.seeds, strict=True):
            name = f"{image_uuid}.{task.extension}"
            item: dict[str, Any] = {
                "taskType": "imageInference",
                "taskUUID": task.uuid,
                "imageUUID": image_uuid,
            }
            if polled:
                item["status"] = "success"
            if "URL" in types:
                item["imageURL"] = cdn.url(request, name)
            if "base64Data" in types or "dataURI" in types:
                encoded = base64.b64encode(await run_in_threadpool(cdn.bytes_of, name) or b"").decode()
                if "base64Data" in types:
                    item["imageBase64Data"] = encoded
                if "dataURI" in types:
                    item["imageDataURI"] = f"data:{MIME[task.extension]};base64,{encoded}"
            item["seed"] = seed
            if checks_content(body):
                item["NSFWContent"] = task.job is not None and task.job.fault is Fault.moderation_output
            if body.get("includeCost"):
                item["cost"] = round(task.cost / len(task.images), 6)
            items.append(item)
        return items

    async def image_inference(request: Request, body: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        if (problem := validate(body)) is not None:
            return [], [problem]
        task_uuid = body["taskUUID"]
        model = MODELS[body["model"]]
        width, height, count = body["width"], body["height"], body.get("numberResults", 1)
        cost = round(model.usd * count * width * height / (1024 * 1024), 6)
        with state.lock:
            if task_uuid in state.tasks:
                return [], [_error("conflictTaskUUID", f"Task UUID {task_uuid} has already been used.", body,
                                   "taskUUID")]  # fmt: skip
            if state.credits < cost:
                return [], [_error("insufficientCredits", "Insufficient credits to run this task.", body)]
            fault = sim.draw(*JOB_FAULTS)
            task = Task(uuid=task_uuid, body=body, cost=cost)
            state.tasks[task_uuid] = task
            if fault is Fault.moderation:
                task.error = _error("contentModerated", "The input was flagged by content moderation.", body,
                                    "positivePrompt")  # fmt: skip
                return [], [task.error]
            state.credits -= cost
        task.job = start_job(sim, VENDOR, model.latency_s, body, faults=(), job_id=task_uuid)
        task.job.fault = fault
        task.extension = OUTPUT_FORMATS[str(body.get("outputFormat", "JPG")).upper()]
        if fault is Fault.failed:
            task.error = _error("timeoutProvider", "The provider timed out while generating the image.", body)
        else:
            task.images = [str(uuid.uuid4()) for _ in range(count)]
            # (u) a sent seed serves every image; otherwise each gets its own, as Runware reports them.
            task.seeds = [body.get("seed") or sim.random.randint(1, 2**63 - 1) for _ in task.images]
            for image_uuid in task.images:
                cdn.put(
                    f"{image_uuid}.{task.extension}",
                    lambda: still(body["positivePrompt"], width, height, task.extension),
                    MIME[task.extension],
                    shape=(VENDOR, body["model"], width, height, task.extension),
                    ready_at=task.job.ends,
                    fault=fault,
                )
        if body.get("deliveryMethod") == "async":
            called_back(request, task)
            return [{"taskType": "imageInference", "taskUUID": task_uuid, "status": "processing"}], []
        # Sync delivery: the answer waits for the images.
        await asyncio.sleep(max(0.0, task.job.ends - time.monotonic()))
        if task.error is not None:
            return [], [task.error]
        return await results(request, task, polled=False), []

    def validate_video(task: dict[str, Any]) -> dict[str, Any] | None:
        """The first problem with a videoInference task, as its error item."""
        model = VIDEO_MODELS.get(task.get("model"))  # type: ignore[arg-type]
        if model is None:
            return _invalid(task, "model", f"{task.get('model')!r} is not an available video model.")
        text = task.get("positivePrompt")
        if not isinstance(text, str) or not 2 <= len(text.strip()) <= 3000:
            return _invalid(task, "positivePrompt", "it must be 2 to 3000 characters.")
        if (task.get("width"), task.get("height")) not in model.sizes:
            sizes = ", ".join(f"{w}x{h}" for w, h in model.sizes)
            return _invalid(
                task, "width", f"{model.name} makes {sizes}; width and height must be one of them."
            )
        duration = task.get("duration")
        if (
            isinstance(duration, bool)
            or not isinstance(duration, int | float)
            or duration not in model.durations
        ):
            lengths = ", ".join(f"{d:g}" for d in model.durations)
            return _invalid(task, "duration", f"{model.name} makes clips of {lengths} seconds.")
        if "fps" in task and task["fps"] not in model.fps:
            return _invalid(task, "fps", f"{model.name} makes {', '.join(map(str, model.fps))} fps.")
        if task.get("deliveryMethod") != "async":
            return _invalid(task, "deliveryMethod", "video inference is delivered async only.")
        if str(task.get("outputFormat", "MP4")).upper() not in VIDEO_FORMATS:
            return _invalid(task, "outputFormat", f"it must be one of {', '.join(VIDEO_FORMATS)}.")
        if task.get("outputType", "URL") != "URL":
            return _invalid(task, "outputType", "video is delivered as URL.")
        if problem := _webhook_problem(task):
            return problem
        if "includeCost" in task and not isinstance(task["includeCost"], bool):
            return _invalid(task, "includeCost", "it must be a boolean.")
        return frame_images(task, model)

    def frame_images(task: dict[str, Any], model: VideoModel) -> dict[str, Any] | None:
        """frameImages: a list of {inputImage, frame}, one first and one last frame at most, as the model takes."""
        frames = task.get("frameImages", [])
        if not isinstance(frames, list) or not all(isinstance(f, dict) for f in frames):
            return _invalid(task, "frameImages", "it must be an array of {inputImage, frame}.")
        positions = [f.get("frame", "first") for f in frames]
        for position in positions:
            if position not in model.frames:
                return _invalid(task, "frameImages", f"{model.name} takes frames {', '.join(model.frames)}.")
        if len(set(positions)) < len(positions):
            return _invalid(task, "frameImages", "each frame position takes one image.")
        if model.needs_first and "first" not in positions:
            return _invalid(task, "frameImages", f"{model.name} needs a first frame image.")
        known = known_images()
        for frame in frames:
            if problem := _image_problem(frame.get("inputImage"), known):
                return _invalid(task, "frameImages", f"an inputImage {problem}.")
        return None

    async def video_inference(request: Request, body: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        if (problem := validate_video(body)) is not None:
            return [], [problem]
        task_uuid = body["taskUUID"]
        model = VIDEO_MODELS[body["model"]]
        seconds, width, height = float(body["duration"]), body["width"], body["height"]
        cost = round(model.usd_per_s * seconds, 6)
        with state.lock:
            if task_uuid in state.tasks:
                return [], [_error("conflictTaskUUID", f"Task UUID {task_uuid} has already been used.", body,
                                   "taskUUID")]  # fmt: skip
            if state.credits < cost:
                return [], [_error("insufficientCredits", "Insufficient credits to run this task.", body)]
            fault = sim.draw(*JOB_FAULTS)
            task = Task(uuid=task_uuid, body=body, cost=cost, extension=VIDEO_FORMATS[
                str(body.get("outputFormat", "MP4")).upper()])  # fmt: skip
            state.tasks[task_uuid] = task
            if fault is Fault.moderation:
                task.error = _error("contentModerated", "The input was flagged by content moderation.", body,
                                    "positivePrompt")  # fmt: skip
                return [], [task.error]
            state.credits -= cost
        task.job = start_job(sim, VENDOR, model.latency_s, body, faults=(), job_id=task_uuid)
        task.job.fault = fault
        if fault is Fault.failed:
            task.error = _error("timeoutProvider", "The provider timed out while generating the video.", body)
        elif fault is Fault.moderation_output:
            task.error = _error(
                OUTPUT_MODERATED, "The generated video was flagged by content moderation.", body
            )
        else:
            first = next((f["inputImage"] for f in body.get("frameImages", []) if f.get("frame", "first") == "first"),
                         None)  # fmt: skip
            start = await _start_image(first)
            fps = body.get("fps") or model.fps[0]
            task.video = str(uuid.uuid4())
            cdn.put(
                f"{task.video}.{task.extension}",
                partial(clip, body["positivePrompt"], width, height, seconds, fps, start=start),
                MIME[task.extension],
                shape=(VENDOR, body["model"], width, height, seconds, fps),
                ready_at=task.job.ends,
                fault=fault,
            )
        called_back(request, task)
        return [{"taskType": "videoInference", "taskUUID": task_uuid, "status": "processing"}], []

    def video_result(request: Request, task: Task) -> dict[str, Any]:
        item: dict[str, Any] = {
            "taskType": "videoInference",
            "taskUUID": task.uuid,
            "status": "success",
            "videoUUID": task.video,
            "videoURL": cdn.url(request, f"{task.video}.{task.extension}"),
            "seed": task.body.get("seed") or 1 + int(task.uuid[:8], 16) % 2**31,
        }
        if task.body.get("includeCost"):
            item["cost"] = task.cost
        return item

    def called_back(request: Request, task: Task) -> None:
        """A task with a webhookURL gets its end posted there (notify), off the request path."""
        if "webhookURL" in task.body:
            notifier = asyncio.create_task(notify(request, task))
            webhooks.add(notifier)  # the loop keeps only weak references to tasks
            notifier.add_done_callback(webhooks.discard)

    async def notify(request: Request, task: Task) -> None:
        """POST the task's end once to its webhookURL when it ends, as getResponse then answers it."""
        assert task.job is not None
        await asyncio.sleep(max(0.0, task.job.ends - time.monotonic()))
        items, errors = await ended(request, task)
        body = {"errors": errors} if errors else {"data": items}
        try:
            async with httpx.AsyncClient(timeout=5.0, verify=outbound_tls()) as http:
                await http.post(task.body["webhookURL"], json=body)
        except httpx.HTTPError:
            pass  # an unreachable receiver does not change the task

    async def get_response(request: Request, body: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        task = state.tasks.get(body["taskUUID"])
        if task is None:
            return [], [
                _error("taskNotFound", f"No task found for taskUUID {body['taskUUID']}.", body, "taskUUID")
            ]
        kind = task.body.get("taskType", "imageInference")
        if task.job is not None and time.monotonic() < task.job.ends:
            return [{"taskType": kind, "taskUUID": task.uuid, "status": "processing"}], []
        return await ended(request, task)

    async def ended(request: Request, task: Task) -> tuple[list[Any], list[Any]]:
        """A task that has ended, as getResponse answers it: its result items, or its error item."""
        if task.error is not None:
            return [], [{**task.error, "status": "error"}]
        if task.body.get("taskType") == "videoInference":
            return [video_result(request, task)], []
        return await results(request, task, polled=True), []

    def authenticate(request: Request, tasks: list[Any]) -> tuple[list[Any], dict[str, Any] | None]:
        """A Bearer header or an `authentication` task; the latter answers with a session, as on the WebSocket."""
        auth = next((t for t in tasks if isinstance(t, dict) and t.get("taskType") == "authentication"), None)
        scheme, _, header_key = request.headers.get("authorization", "").partition(" ")
        key = auth.get("apiKey") if auth else (header_key.strip() if scheme.lower() == "bearer" else None)
        if not key:
            return [], _error("missingApiKey", "Missing API key.", {"taskType": "authentication"}, "apiKey")
        if not isinstance(key, str) or not KEY_RE.match(key):
            return [], _error("invalidApiKey", INVALID_KEY, {"taskType": "authentication"}, "apiKey")
        if auth is None:
            return [], None
        return [{"taskType": "authentication", "connectionSessionUUID": str(uuid.uuid4())}], None

    @api.post("/v1")
    async def tasks(request: Request) -> Response:
        try:
            batch = await request.json()
        except ValueError:
            batch = None
        if not isinstance(batch, list) or not all(isinstance(t, dict) for t in batch):
            problem = _error("invalidRequestBody", "The request body must be a JSON array of task objects.")
            return JSONResponse({"errors": [problem]}, status_code=400)
        data, refused = authenticate(request, batch)
        if refused is not None:
            return JSONResponse({"errors": [refused]}, status_code=STATUS[refused["code"]])
        errors: list[dict[str, Any]] = []
        runs = []
        for task in batch:
            kind = task.get("taskType")
            if kind == "authentication":
                continue
            if not isinstance(task.get("taskUUID"), str) or not UUID4_RE.match(task["taskUUID"]):
                errors.append(_invalid(task, "taskUUID", "it must be a UUID v4."))
            elif kind == "imageInference":
                runs.append(image_inference(request, task))
            elif kind == "videoInference":
                runs.append(video_inference(request, task))
            elif kind == "getResponse":
                runs.append(get_response(request, task))
            else:
                errors.append(_invalid(task, "taskType", f"{kind!r} is not a task this API runs."))
        # Tasks of one request run side by side; each answers for itself.
        for items, problems in await asyncio.gather(*runs):
            data += items
            errors += problems
        envelope: dict[str, Any] = {"data": data} if data else {}
        if errors:
            envelope["errors"] = errors
        status = 200 if data or not errors else STATUS.get(errors[0]["code"], 400)
        return JSONResponse(envelope or {"data": []}, status_code=status)

    @api.get("/_sim/credits")
    async def get_credits() -> dict[str, float]:
        return {"balance": state.credits}

    @api.post("/_sim/credits")
    async def set_credits(changes: dict[str, float]) -> dict[str, float]:
        state.credits = float(changes.get("balance", state.credits))
        return {"balance": state.credits}

    cdn.route(api)
    return api
