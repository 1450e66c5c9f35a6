"""The Runware simulator's REST task-array contract, over httpx; the `runware` SDK (WebSocket-only for inference)
supplies the task bodies and parses the answers, so its wire names are the ones tested."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from PIL import Image
from runware import IImage, IImageInference, ISafety, Runware, instantiateDataclassList

from simulator import runware as sim_runware

if TYPE_CHECKING:
    from tests.simulator_fixture import SimulatorHandle


@pytest.fixture
def sim(simulator: SimulatorHandle) -> SimulatorHandle:
    simulator.reset(latency_scale=0.01)
    httpx.post(f"{simulator.url}/runware/_sim/credits", json={"balance": 1000.0})
    return simulator


@pytest.fixture
def api(sim: SimulatorHandle) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {sim_runware.SIMULATOR_KEY}"}
    with httpx.Client(base_url=f"{sim.url}{sim_runware.PREFIX}", headers=headers, timeout=10) as client:
        yield client


def _task(**changes: Any) -> dict[str, Any]:
    task = {"taskType": "imageInference", "taskUUID": str(uuid.uuid4()), "model": "runware:100@1",
            "positivePrompt": "a lighthouse at dusk", "width": 1024, "height": 576}  # fmt: skip
    return {k: v for k, v in {**task, **changes}.items() if v is not None}


def _png_data_uri() -> str:
    picture = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(picture, format="PNG")
    return "data:image/png;base64," + base64.b64encode(picture.getvalue()).decode()


def test_a_sync_task_answers_with_a_url_to_a_real_jpg_of_the_asked_size(api: httpx.Client) -> None:
    task = _task(includeCost=True, numberResults=2)
    response = api.post("/v1", json=[task])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data"} and len(body["data"]) == 2
    for item in body["data"]:
        assert item["taskType"] == "imageInference" and item["taskUUID"] == task["taskUUID"]
        assert item["cost"] > 0 and isinstance(item["seed"], int) and "NSFWContent" not in item
        download = httpx.get(item["imageURL"])  # the CDN needs no key
        assert download.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(download.content)).size == (1024, 576)


def test_the_sdks_own_task_body_is_accepted_and_its_answer_parses(api: httpx.Client) -> None:
    """The SDK sends over WebSocket only; the body it builds is the REST body, and its IImage reads the answer."""
    request = IImageInference(
        model="runware:101@1", positivePrompt="  a red kite over dunes  ", width=512, height=768,
        outputType="base64Data", outputFormat="PNG", safety=ISafety(checkContent=True), includeCost=True,
        taskUUID=str(uuid.uuid4()), referenceImages=[_png_data_uri()], steps=20, CFGScale=3.5, seed=42,
    )  # fmt: skip
    sdk = Runware(api_key=sim_runware.SIMULATOR_KEY)
    body = sdk._buildImageRequest(request, request.positivePrompt.strip(), [], {}, [], {}, {}, {})
    assert body["safety"] == {"checkContent": True} and "checkNSFW" not in body
    response = api.post("/v1", json=[body])
    assert response.status_code == 200, response.text
    (image,) = instantiateDataclassList(IImage, response.json()["data"])
    assert image.NSFWContent is False and image.seed == 42 and image.imageURL is None
    picture = Image.open(io.BytesIO(base64.b64decode(image.imageBase64Data)))
    assert (picture.format, picture.size) == ("PNG", (512, 768))


def test_a_data_uri_output_is_a_webp(api: httpx.Client) -> None:
    response = api.post("/v1", json=[_task(outputType=["dataURI", "URL"], outputFormat="WEBP", width=256)])
    (item,) = response.json()["data"]
    assert item["imageDataURI"].startswith("data:image/webp;base64,") and item["imageURL"].endswith(".webp")
    picture = Image.open(io.BytesIO(base64.b64decode(item["imageDataURI"].split(",", 1)[1])))
    assert (picture.format, picture.size) == ("WEBP", (256, 576))


def test_auth_refusals_and_the_authentication_task(sim: SimulatorHandle) -> None:
    url = f"{sim.url}/runware/v1"
    missing = httpx.post(url, json=[_task()])
    assert missing.status_code == 401 and missing.json()["errors"][0]["code"] == "missingApiKey"
    wrong = httpx.post(url, json=[_task()], headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {"errors": [{"code": "invalidApiKey", "message": sim_runware.INVALID_KEY,
                                        "parameter": "apiKey", "documentation": sim_runware.DOCS,
                                        "taskType": "authentication"}]}  # fmt: skip
    auth = {"taskType": "authentication", "apiKey": sim_runware.SIMULATOR_KEY}
    answer = httpx.post(url, json=[auth, _task()])
    assert answer.status_code == 200
    kinds = [item["taskType"] for item in answer.json()["data"]]
    assert kinds == ["authentication", "imageInference"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"taskUUID": "1234"}, "invalidTaskUUID"),
        ({"taskUUID": "a770f077-f413-17de-9dac-be0b26a35da6"}, "invalidTaskUUID"),  # a UUID, but not v4
        ({"model": "runware:999@1"}, "invalidModel"),
        ({"positivePrompt": "a"}, "invalidPositivePrompt"),
        ({"positivePrompt": None}, "invalidPositivePrompt"),
        ({"width": 1000}, "invalidWidth"),
        ({"height": 4096}, "invalidHeight"),
        ({"height": None}, "invalidHeight"),
        ({"steps": 0}, "invalidSteps"),
        ({"numberResults": 21}, "invalidNumberResults"),
        ({"outputType": "PNG"}, "invalidOutputType"),
        ({"outputFormat": "GIF"}, "invalidOutputFormat"),
        ({"seedImage": "data:text/plain;base64,aGVsbG8=", "strength": 0.5}, "invalidSeedImage"),
        ({"seedImage": base64.b64encode(b"%PDF-1.4").decode()}, "invalidSeedImage"),
        ({"referenceImages": ["0b5f8e7e-7c3a-4d2b-9a1e-3f4c5d6e7f80"]}, "invalidReferenceImages"),
        ({"taskType": "videoInference"}, "invalidModel"),
    ],
)
def test_a_bad_task_gets_its_own_error_item(api: httpx.Client, changes: dict[str, Any], code: str) -> None:
    task = _task(**changes)
    response = api.post("/v1", json=[task])
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["code"] == code and error["taskUUID"] == task["taskUUID"], error
    assert error["parameter"] and error["message"]


def test_one_answer_holds_the_good_tasks_data_and_the_bad_tasks_error(api: httpx.Client) -> None:
    good, bad = _task(seedImage=_png_data_uri(), strength=0.6), _task(width=100)
    response = api.post("/v1", json=[good, bad])
    assert response.status_code == 200
    body = response.json()
    assert [d["taskUUID"] for d in body["data"]] == [good["taskUUID"]]
    assert [(e["taskUUID"], e["code"]) for e in body["errors"]] == [(bad["taskUUID"], "invalidWidth")]


def test_a_failed_task_is_a_timeout_provider_error(sim: SimulatorHandle, api: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["failed"])
    task = _task()
    response = api.post("/v1", json=[task])
    assert response.status_code == 500
    assert response.json()["errors"][0] | {"message": ""} == {
        "code": "timeoutProvider", "message": "", "taskType": "imageInference", "taskUUID": task["taskUUID"]
    }  # fmt: skip


def test_a_moderated_prompt_is_refused(sim: SimulatorHandle, api: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation"])
    response = api.post("/v1", json=[_task()])
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "contentModerated"


def test_a_moderated_output_is_marked_only_when_checked(sim: SimulatorHandle, api: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    checked = api.post("/v1", json=[_task(checkNSFW=True)]).json()["data"][0]
    assert checked["NSFWContent"] is True
    unchecked = api.post("/v1", json=[_task()]).json()["data"][0]
    assert "NSFWContent" not in unchecked


def test_an_expired_image_url_is_gone(sim: SimulatorHandle, api: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["expired"])
    (item,) = api.post("/v1", json=[_task()]).json()["data"]
    download = httpx.get(item["imageURL"])
    assert download.status_code == 403 and b"AccessDenied" in download.content


def test_async_delivery_is_polled_with_get_response(sim: SimulatorHandle, api: httpx.Client) -> None:
    sim.configure(latency_scale=0.1, latency_jitter=0.0)  # FLUX dev's 3 s becomes 0.3 s
    task = _task(model="runware:101@1", deliveryMethod="async")
    ack = api.post("/v1", json=[task]).json()
    assert ack == {
        "data": [{"taskType": "imageInference", "taskUUID": task["taskUUID"], "status": "processing"}]
    }
    poll = [{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]
    statuses = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        (item,) = api.post("/v1", json=poll).json()["data"]
        statuses.append(item["status"])
        if item["status"] == "success":
            break
        time.sleep(0.05)
    assert statuses[0] == "processing" and statuses[-1] == "success"
    assert httpx.get(item["imageURL"]).status_code == 200
    unknown = api.post("/v1", json=[{"taskType": "getResponse", "taskUUID": str(uuid.uuid4())}])
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "taskNotFound"


def test_a_resent_task_uuid_conflicts_and_its_result_stays_readable(api: httpx.Client) -> None:
    task = _task()
    first = api.post("/v1", json=[task]).json()["data"][0]
    again = api.post("/v1", json=[task])
    assert again.status_code == 400 and again.json()["errors"][0]["code"] == "conflictTaskUUID"
    (polled,) = api.post("/v1", json=[{"taskType": "getResponse", "taskUUID": task["taskUUID"]}]).json()[
        "data"
    ]
    assert (polled["status"], polled["imageUUID"]) == ("success", first["imageUUID"])


def test_insufficient_credits(sim: SimulatorHandle, api: httpx.Client) -> None:
    httpx.post(f"{sim.url}/runware/_sim/credits", json={"balance": 0.0})
    response = api.post("/v1", json=[_task()])
    assert response.status_code == 402
    assert response.json()["errors"][0]["code"] == "insufficientCredits"


def test_a_body_that_is_not_a_task_array_is_refused(api: httpx.Client) -> None:
    response = api.post("/v1", json=_task())
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "invalidRequestBody"


# -- webhooks ------------------------------------------------------------------------------------------------------


@contextmanager
def _webhook_receiver() -> Iterator[tuple[str, list[tuple[float, dict[str, Any]]]]]:
    """A loopback URL, and the JSON bodies posted to it with their (wall clock) arrival, as they arrive."""
    received: list[tuple[float, dict[str, Any]]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((time.time(), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/runware-hook", received
    finally:
        server.shutdown()
        server.server_close()


def _video_task(**changes: Any) -> dict[str, Any]:
    """A Seedance Lite clip, 0.6 s at the fixture's latency scale."""
    return {"taskType": "videoInference", "taskUUID": str(uuid.uuid4()), "model": "bytedance:1@1",
            "positivePrompt": "waves on a reef", "width": 1248, "height": 704, "duration": 5,
            "deliveryMethod": "async", "includeCost": True, **changes}  # fmt: skip


def _posted(received: list[Any], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_video_task_with_a_webhook_url_has_its_end_posted_there_once(
    sim: SimulatorHandle, api: httpx.Client
) -> None:
    with _webhook_receiver() as (hook, received):
        ok = _video_task(webhookURL=hook)
        assert api.post("/v1", json=[ok]).status_code == 200
        sim.configure(fault_rate=1.0, faults=["failed"])
        failing = _video_task(webhookURL=hook)
        assert api.post("/v1", json=[failing]).status_code == 200
        _posted(received, 2)
        time.sleep(0.3)  # long enough for a second post of either task to arrive
    arrived = {(b.get("data") or b.get("errors"))[0]["taskUUID"]: at for at, b in received}
    by_task = {(b.get("data") or b.get("errors"))[0]["taskUUID"]: b for _, b in received}
    assert len(received) == 2 and set(by_task) == {ok["taskUUID"], failing["taskUUID"]}
    finished = {job["id"]: job["finished"] for job in sim.jobs() if job["vendor"] == "runware"}
    assert all(arrived[task] >= finished[task] - 0.01 for task in by_task)  # posted when the task ended
    # Each post is what getResponse answers once the task has ended.
    poll = [{"taskType": "getResponse", "taskUUID": ok["taskUUID"]}]
    assert by_task[ok["taskUUID"]] == api.post("/v1", json=poll).json()
    (item,) = by_task[ok["taskUUID"]]["data"]
    assert item["status"] == "success" and item["cost"] > 0 and item["videoURL"]
    (error,) = by_task[failing["taskUUID"]]["errors"]
    assert (error["status"], error["code"]) == ("error", "timeoutProvider")


def test_a_webhook_url_that_is_no_http_url_is_refused(api: httpx.Client) -> None:
    refused = api.post("/v1", json=[_video_task(webhookURL="hooks.example/runware")])
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "invalidWebhookURL"
