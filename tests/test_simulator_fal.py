"""The fal.ai simulator against the official `fal-client` SDK's request handle, over loopback HTTP.

fal-client 1.0.3 builds its submit/run URLs from `https://{FAL_QUEUE_RUN_HOST}/` at import time, so it cannot
reach an http:// loopback base without patching a module constant: the submit is a plain httpx POST (exactly
what `SyncClient.submit` sends), and everything after it goes through `fal_client.SyncRequestHandle`, which
follows the status/response/cancel URLs the server answered, as the SDK does.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import fal_client
import httpx
import pytest
from PIL import Image

from simulator import fal as sim_fal

if TYPE_CHECKING:
    from tests.simulator_fixture import SimulatorHandle

KEY = sim_fal.SIMULATOR_KEY
#: A second account (key id), so queue tests do not wait behind runs left by other tests.
QUEUE_KEY = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d:00112233445566778899aabbccddeeff"
POLL = 0.01


@pytest.fixture
def sim(simulator: SimulatorHandle) -> Iterator[SimulatorHandle]:
    simulator.reset(latency_scale=0.01, latency_jitter=0.0)
    yield simulator
    simulator.reset()  # no faults on the control calls below
    httpx.post(f"{simulator.url}/fal/_sim/limits", json={"concurrency": 2}).raise_for_status()
    httpx.post(f"{simulator.url}/fal/_sim/billing", json={"balance_usd": 100.0}).raise_for_status()


def client(sim: SimulatorHandle, key: str = KEY) -> httpx.Client:
    headers = {"Authorization": f"Key {key}", "User-Agent": f"fal-client/{fal_client.__version__} (python)"}
    return httpx.Client(base_url=f"{sim.url}/fal", headers=headers, timeout=10)


def submit(
    http: httpx.Client, model: str, arguments: dict[str, Any], **headers: str
) -> fal_client.SyncRequestHandle:
    """What SyncClient.submit does, against the simulator's queue host."""
    response = http.post(f"/{model}", json=arguments, headers=headers)
    response.raise_for_status()
    data = response.json()
    assert data["status"] == "IN_QUEUE" and isinstance(data["queue_position"], int)
    return fal_client.SyncRequestHandle(
        request_id=data["request_id"], response_url=data["response_url"], status_url=data["status_url"],
        cancel_url=data["cancel_url"], client=http,
    )  # fmt: skip


def fails(handle: fal_client.SyncRequestHandle) -> fal_client.FalClientHTTPError:
    with pytest.raises(fal_client.FalClientHTTPError) as caught:
        handle.get(interval=POLL)
    return caught.value


def png(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(
    ("model", "arguments", "size", "fmt"),
    [
        ("fal-ai/flux/dev", {"image_size": "landscape_16_9", "output_format": "png"}, (1024, 576), "PNG"),
        ("fal-ai/flux/schnell", {"image_size": {"width": 640, "height": 480}, "seed": 7}, (640, 480), "JPEG"),
        (
            "fal-ai/flux-pro/v1.1-ultra",
            {"aspect_ratio": "9:16", "safety_tolerance": "2"},
            (1536, 2752),
            "JPEG",
        ),
        ("fal-ai/flux-pro/kontext", {"image_url": png(400, 300)}, (1184, 880), "JPEG"),
    ],
)
def test_queue_run_downloads_an_image_of_the_asked_size(
    sim: SimulatorHandle, model: str, arguments: dict[str, Any], size: tuple[int, int], fmt: str
) -> None:
    with client(sim) as http:
        handle = submit(http, model, {"prompt": "a red bicycle at dawn", **arguments})
        app = "/".join(model.split("/")[:2])  # the request URLs drop the model's sub-path
        assert handle.status_url == f"{sim.url}/fal/{app}/requests/{handle.request_id}/status"
        result = handle.get(interval=POLL)
        (image,) = result["images"]
        assert (image["width"], image["height"]) == size
        assert image["content_type"] == f"image/{fmt.lower()}"
        assert result["has_nsfw_concepts"] == [False] and result["prompt"] == "a red bicycle at dawn"
        assert result["seed"] == arguments.get("seed", result["seed"]) and isinstance(result["seed"], int)
        picture = Image.open(io.BytesIO(httpx.get(image["url"]).raise_for_status().content))
        assert (picture.size, picture.format) == (size, fmt)
        # The full model path is not a request URL.
        assert http.get(f"/{model}/requests/{handle.request_id}/status").status_code == 404


@pytest.mark.parametrize(
    ("ratio", "size"), [(None, (2752, 1536)), ("21:9", (3136, 1344)), ("1:1", (2048, 2048))]
)
def test_ultra_sizes_follow_the_aspect_ratio(
    sim: SimulatorHandle, ratio: str | None, size: tuple[int, int]
) -> None:
    arguments = {"prompt": "x", **({"aspect_ratio": ratio} if ratio else {})}
    with client(sim) as http:
        (image,) = submit(http, "fal-ai/flux-pro/v1.1-ultra", arguments).get(interval=POLL)["images"]
    assert (image["width"], image["height"]) == size


def test_sync_host_answers_the_result_with_inline_media(sim: SimulatorHandle) -> None:
    with client(sim) as http:
        response = http.post("/run/fal-ai/flux/schnell", json={"prompt": "a lighthouse", "image_size": "square",
                                                                "num_images": 2, "sync_mode": True})  # fmt: skip
    assert response.status_code == 200
    images = response.json()["images"]
    assert len(images) == 2 and all(i["url"].startswith("data:image/jpeg;base64,") for i in images)
    data = base64.b64decode(images[0]["url"].split(",", 1)[1])
    assert Image.open(io.BytesIO(data)).size == (512, 512)


def test_queue_states_positions_and_logs_under_the_account_concurrency(sim: SimulatorHandle) -> None:
    sim.configure(latency_scale=0.04)  # flux/dev: 0.2 s each
    httpx.post(f"{sim.url}/fal/_sim/limits", json={"concurrency": 1}).raise_for_status()
    with client(sim, QUEUE_KEY) as http:
        handles = [submit(http, "fal-ai/flux/dev", {"prompt": f"shot {i}"}) for i in range(3)]
        time.sleep(0.05)  # the first leaves fal's dispatch (10% of its run) and starts
        assert isinstance(handles[0].status(), fal_client.InProgress)
        assert [h.status() for h in handles[1:]] == [
            fal_client.Queued(position=0),
            fal_client.Queued(position=1),
        ]
        events = list(handles[2].iter_events(with_logs=True, interval=POLL))
        assert any(isinstance(e, fal_client.InProgress) and e.logs for e in events)
        done = events[-1]
        assert (
            isinstance(done, fal_client.Completed)
            and done.error is None
            and done.metrics["inference_time"] > 0
        )
        assert all(h.get(interval=POLL)["images"] for h in handles)
    ids = [h.request_id for h in handles]
    jobs = sorted((j for j in sim.jobs() if j["id"] in ids), key=lambda j: ids.index(j["id"]))
    for earlier, later in zip(jobs, jobs[1:], strict=False):
        assert later["started"] >= earlier["finished"] - 0.02  # one IN_PROGRESS at a time


def test_auth_refusals_in_fals_shape(sim: SimulatorHandle) -> None:
    cases = {
        f"Key {KEY.split(':')[0]}:not-the-secret": "No user found for Key ID and Secret",
        "Key just-a-token": "Invalid Key Authorization header format. Expected '<key_id>:<key_secret>'.",
        "": "Missing authorization header",
    }
    for header, detail in cases.items():
        response = httpx.post(f"{sim.url}/fal/fal-ai/flux/dev", json={"prompt": "x"},
                              headers={"Authorization": header} if header else {})  # fmt: skip
        assert (response.status_code, response.json()) == (401, {"detail": detail})
    with client(sim) as http:
        handle = submit(http, "fal-ai/flux/schnell", {"prompt": "x"})
    with httpx.Client(headers={"Authorization": "Key nope"}) as stranger:
        foreign = fal_client.SyncRequestHandle(handle.request_id, handle.response_url, handle.status_url,
                                               handle.cancel_url, stranger)  # fmt: skip
        with pytest.raises(fal_client.FalClientHTTPError) as caught:
            foreign.status()
    assert caught.value.status_code == 401


def test_invalid_input_is_queued_then_answered_422(sim: SimulatorHandle) -> None:
    with client(sim) as http:
        error = fails(submit(http, "fal-ai/flux/dev", {"image_size": "huge", "num_images": 9}))
        assert error.status_code == 422 and error.response.headers["x-fal-retryable"] == "false"
        details = {tuple(d["loc"]): d["type"] for d in error.message}
        assert details == {("body", "prompt"): "missing", ("body", "image_size"): "literal_error",
                           ("body", "num_images"): "less_than_equal"}  # fmt: skip
        sync = http.post("/run/fal-ai/flux-pro/v1.1", json={"prompt": "x", "safety_tolerance": 2})
        assert sync.status_code == 422 and sync.json()["detail"][0]["loc"] == ["body", "safety_tolerance"]
        unknown = http.post("/fal-ai/flux/turbo", json={"prompt": "x"})
        assert unknown.status_code == 404


def test_a_non_image_data_uri_is_refused_with_a_4xx(sim: SimulatorHandle) -> None:
    not_an_image = "data:image/png;base64," + base64.b64encode(b"this is not a png").decode()
    with client(sim) as http:
        error = fails(submit(http, "fal-ai/flux-pro/kontext", {"prompt": "x", "image_url": not_an_image}))
        assert error.status_code == 422 and error.message[0]["type"] == "image_load_error"
        sync = http.post(
            "/run/fal-ai/flux-pro/kontext", json={"prompt": "x", "image_url": "data:text/plain,hi"}
        )
        assert sync.status_code == 422 and sync.json()["detail"][0]["loc"] == ["body", "image_url"]


def test_failed_run_completes_with_a_runner_error(sim: SimulatorHandle) -> None:
    sim.configure(fault_rate=1.0, faults=["failed"])
    with client(sim) as http:
        handle = submit(http, "fal-ai/flux/dev", {"prompt": "x"})
        events = list(handle.iter_events(interval=POLL))
        assert events[-1].error_type == "runner_server_error"
        error = fails(handle)
    assert (error.status_code, error.error_type) == (500, "runner_server_error")
    assert error.response.headers["x-fal-error-type"] == "runner_server_error"


def test_input_moderation_answers_content_policy_violation(sim: SimulatorHandle) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation"])
    with client(sim) as http:
        error = fails(submit(http, "fal-ai/flux/schnell", {"prompt": "something flagged"}))
    assert error.status_code == 422
    (detail,) = error.message
    assert detail["type"] == "content_policy_violation" and detail["loc"] == ["body", "prompt"]


def test_output_moderation_blacks_out_the_image_and_flags_it(sim: SimulatorHandle) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    with client(sim) as http:
        result = submit(http, "fal-ai/flux/schnell", {"prompt": "x", "image_size": "square"}).get(
            interval=POLL
        )
    assert result["has_nsfw_concepts"] == [True]
    picture = Image.open(io.BytesIO(httpx.get(result["images"][0]["url"]).raise_for_status().content))
    assert picture.size == (512, 512) and picture.convert("L").getextrema() == (0, 0)


def test_expired_output_link_is_gone(sim: SimulatorHandle) -> None:
    sim.configure(fault_rate=1.0, faults=["expired"])
    with client(sim) as http:
        result = submit(http, "fal-ai/flux/schnell", {"prompt": "x"}).get(interval=POLL)
    assert httpx.get(result["images"][0]["url"]).status_code == 404


def test_cancel_queued_running_and_finished_requests(sim: SimulatorHandle) -> None:
    sim.configure(latency_scale=0.2)  # flux/dev: 1 s
    httpx.post(f"{sim.url}/fal/_sim/limits", json={"concurrency": 1}).raise_for_status()
    with client(sim, QUEUE_KEY) as http:
        running, queued = (submit(http, "fal-ai/flux/dev", {"prompt": p}) for p in ("a", "b"))
        time.sleep(0.15)
        assert isinstance(running.status(), fal_client.InProgress)
        assert http.put(queued.cancel_url).json() == {"status": "OK"}
        answer = http.put(running.cancel_url)
        assert (answer.status_code, answer.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
        for handle in (running, queued):
            error = fails(handle)
            assert (error.status_code, error.error_type) == (499, "client_cancelled")
        with pytest.raises(fal_client.FalClientHTTPError) as caught:
            running.cancel()
        assert caught.value.status_code == 400 and caught.value.response.json() == {
            "status": "ALREADY_COMPLETED"
        }
        missing = http.put(f"/fal-ai/flux/requests/{'0' * 8}-0000-4000-8000-{'0' * 12}/cancel")
        assert (missing.status_code, missing.json()) == (404, {"status": "NOT_FOUND"})


def test_a_request_waiting_past_its_start_timeout_ends_504(sim: SimulatorHandle) -> None:
    sim.configure(latency_scale=0.1)  # flux/dev: 0.5 s, longer than the second request may wait
    httpx.post(f"{sim.url}/fal/_sim/limits", json={"concurrency": 1}).raise_for_status()
    with client(sim, QUEUE_KEY) as http:
        submit(http, "fal-ai/flux/dev", {"prompt": "first"})
        waiting = submit(http, "fal-ai/flux/dev", {"prompt": "second"}, **{"X-Fal-Request-Timeout": "0.3"})
        error = fails(waiting)
    assert (error.status_code, error.error_type) == (504, "request_timeout")
    assert error.response.headers["x-fal-request-timeout-type"] == "user"


def test_exhausted_balance_locks_the_account(sim: SimulatorHandle) -> None:
    httpx.post(f"{sim.url}/fal/_sim/billing", json={"balance_usd": 0}).raise_for_status()
    with client(sim) as http:
        response = http.post("/fal-ai/flux/dev", json={"prompt": "x"})
    assert (response.status_code, response.json()) == (403, {"detail": sim_fal.EXHAUSTED})


def test_injected_transport_errors_use_fals_request_error_shape(sim: SimulatorHandle) -> None:
    sim.configure(fault_rate=1.0, faults=["429"], retry_after_s=2)
    with client(sim) as http:
        response = http.post("/fal-ai/flux/dev", json={"prompt": "x"})
    assert response.status_code == 429 and response.headers["retry-after"] == "2"
    assert response.json() == {"detail": "Too many requests"}
    sim.configure(fault_rate=1.0, faults=["5xx"])
    with client(sim) as http:
        unavailable = http.get("/fal-ai/flux/requests/x/status")
    assert (
        unavailable.json()["error_type"]
        == unavailable.headers["x-fal-error-type"]
        == "runner_scheduling_failure"
    )
