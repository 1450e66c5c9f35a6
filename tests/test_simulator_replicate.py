"""The Replicate simulator through the official `replicate` SDK (1.0.7) over loopback HTTP, plus raw httpx where
the SDK hides the wire (error bodies, headers it never sends)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx
import pydantic.v1
import pytest
import replicate
from replicate.exceptions import ModelError, ReplicateError
from replicate.prediction import Prediction
from replicate.webhook import InvalidSignatureError, Webhooks

from simulator import replicate as sim_replicate
from simulator.core import Fault
from simulator.media import image_size, still

if TYPE_CHECKING:
    from tests.simulator_fixture import SimulatorHandle

SCALE = 0.05  # flux-schnell's 1.5 s becomes 75 ms, sdxl's 20 s one second
KEY = sim_replicate.SIMULATOR_KEY
SCHNELL = "black-forest-labs/flux-schnell"
PRO = "black-forest-labs/flux-1.1-pro"
SDXL = "stability-ai/sdxl"
SDXL_VERSION = sim_replicate.BY_NAME[SDXL].version


@pytest.fixture
def sim(simulator: SimulatorHandle) -> SimulatorHandle:
    # A reset also puts the balance back at $100: no POST to /replicate/_sim/billing, which an earlier test's
    # faults would strike.
    simulator.reset(latency_scale=SCALE)
    return simulator


def client(sim: SimulatorHandle, token: str | None = KEY) -> replicate.Client:
    c = replicate.Client(api_token=token, base_url=f"{sim.url}/replicate")
    c.poll_interval = 0.02
    return c


def raw(sim: SimulatorHandle, method: str, path: str, token: str = KEY, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return httpx.request(method, f"{sim.url}/replicate{path}", headers=headers, timeout=10, **kwargs)


def finish(prediction: Prediction, timeout: float = 5.0) -> Prediction:
    deadline = time.monotonic() + timeout
    while prediction.status not in ("succeeded", "failed", "canceled"):
        assert time.monotonic() < deadline, f"prediction still {prediction.status}"
        time.sleep(0.02)
        prediction.reload()
    return prediction


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def test_official_model_makes_images_of_the_aspect_and_format(sim: SimulatorHandle) -> None:
    prediction = client(sim).models.predictions.create(
        model=SCHNELL,
        input={"prompt": "a red bicycle", "aspect_ratio": "16:9", "output_format": "png", "num_outputs": 2},
    )
    assert prediction.status == "starting" and prediction.version == "hidden"
    finish(prediction)
    assert prediction.status == "succeeded", prediction.error
    assert len(prediction.output) == 2 and prediction.metrics["predict_time"] > 0
    assert prediction.progress is not None and prediction.progress.percentage == 1.0
    for url in prediction.output:
        download = httpx.get(url)
        assert download.status_code == 200 and download.content.startswith(b"\x89PNG")
        assert image_size(download.content) == (1344, 768)
    create = next(r for r in sim.requests() if r["method"] == "POST")
    assert create["path"] == f"/replicate/v1/models/{SCHNELL}/predictions"
    assert create["headers"]["authorization"] == "Bearer …"


def test_run_holds_the_create_with_prefer_wait_and_returns_one_url(sim: SimulatorHandle) -> None:
    output = client(sim).run(
        PRO,
        input={
            "prompt": "a lighthouse",
            "aspect_ratio": "custom",
            "width": 1000,
            "height": 600,
            "output_format": "jpg",
        },
    )
    # Our links are http://, which the SDK leaves as plain strings (it wraps only https: and data: in FileOutput).
    assert isinstance(output, str)
    download = httpx.get(output)
    assert download.headers["content-type"] == "image/jpeg"
    assert image_size(download.content) == (992, 608)  # custom sides round to a multiple of 32
    # Finished within the wait, the create came back `processing` with its output: run() did not poll.
    assert not [r for r in sim.requests() if r["method"] == "GET" and "/v1/predictions/" in r["path"]]


def test_a_wait_that_runs_out_answers_starting_and_the_prediction_can_be_canceled(
    sim: SimulatorHandle,
) -> None:
    sim.reset(latency_scale=1.0)
    replicate_client = client(sim)
    began = time.monotonic()
    prediction = replicate_client.predictions.create(version=SDXL_VERSION, input={"prompt": "x"}, wait=1)
    assert 0.9 < time.monotonic() - began < 3
    assert prediction.status == "starting" and prediction.version == SDXL_VERSION
    prediction.cancel()
    assert prediction.status == "canceled"
    with pytest.raises(ReplicateError) as refused:
        replicate_client.predictions.cancel(prediction.id)
    assert refused.value.status == 409


def test_cancel_after_aborts_before_start_and_cancels_while_running(sim: SimulatorHandle) -> None:
    sim.reset(latency_scale=1.0, latency_jitter=0)
    body = {"version": SDXL_VERSION, "input": {"prompt": "x"}}  # starts after a 10 s cold boot
    aborted = raw(sim, "POST", "/v1/predictions", json=body, headers={"Cancel-After": "0.3s"}).json()
    running = raw(sim, "POST", f"/v1/models/{SCHNELL}/predictions", json={"input": {"prompt": "x"}},
                  headers={"Cancel-After": "0.5s"}).json()  # fmt: skip
    time.sleep(0.6)
    assert raw(sim, "GET", f"/v1/predictions/{aborted['id']}").json()["status"] == "aborted"
    late = raw(sim, "GET", f"/v1/predictions/{running['id']}").json()
    assert late["status"] == "canceled" and late["started_at"] is not None
    # replicate 1.0.7's Prediction model does not know `aborted` (replicate-python PR #460).
    with pytest.raises(pydantic.v1.ValidationError):
        client(sim).predictions.get(aborted["id"])
    bad = raw(sim, "POST", "/v1/predictions", json=body, headers={"Cancel-After": "soon"})
    assert bad.status_code == 422


def test_a_pinned_version_runs_and_an_unknown_one_is_refused(sim: SimulatorHandle) -> None:
    sim.reset(latency_scale=0.01)  # sdxl's cold boot and run: 0.2 s
    replicate_client = client(sim)
    # run() with owner/name:version creates by version, then reads the version's schema.
    output = replicate_client.run(
        f"{SDXL}:{SDXL_VERSION}", input={"prompt": "a fox", "width": 512, "height": 384}
    )
    assert image_size(httpx.get(output[0]).content) == (512, 384)
    assert any(r["path"] == f"/replicate/v1/models/{SDXL}/versions/{SDXL_VERSION}" for r in sim.requests())
    with pytest.raises(ReplicateError) as unknown:
        replicate_client.predictions.create(version="0" * 64, input={"prompt": "x"})
    assert unknown.value.status == 422 and unknown.value.title == "Invalid version or not permitted"
    with pytest.raises(ReplicateError) as not_official:
        replicate_client.models.predictions.create(model=SDXL, input={"prompt": "x"})
    assert not_official.value.status == 404


def test_auth_is_refused_in_replicates_problem_shape(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    for token in ("r8_short", None):
        with pytest.raises(ReplicateError) as refused:
            client(sim, token).models.predictions.create(model=SCHNELL, input={"prompt": "x"})
        assert refused.value.status == 401
        assert refused.value.detail == "You did not pass a valid authentication token"
    answer = raw(sim, "GET", "/v1/predictions/abc", token="sk-not-replicate")
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {
        "title": "Unauthenticated",
        "detail": "You did not pass a valid authentication token",
        "status": 401,
    }


def test_input_validation_names_each_field(sim: SimulatorHandle) -> None:
    bad = {
        "aspect_ratio": "7:3",
        "num_outputs": 9,
        "guidance_scale": 7,
    }  # guidance_scale: not schnell's, ignored
    with pytest.raises(ReplicateError) as refused:
        client(sim).models.predictions.create(model=SCHNELL, input=bad)
    assert refused.value.status == 422 and refused.value.title == "Input validation failed"
    assert "- input: prompt is required\n" in refused.value.detail
    assert "- input.num_outputs: Must be less than or equal to 4\n" in refused.value.detail
    body = raw(sim, "POST", f"/v1/models/{SCHNELL}/predictions", json={"input": bad}).json()
    assert [(f["type"], f["field"]) for f in body["invalid_fields"]] == [
        ("required", "input"),
        ("enum", "input.aspect_ratio"),
        ("number_lte", "input.num_outputs"),
    ]
    assert body["invalid_fields"][1]["description"].startswith(
        'aspect_ratio must be one of the following: "1:1"'
    )
    extra = raw(
        sim, "POST", f"/v1/models/{SCHNELL}/predictions", json={"input": {"prompt": "x"}, "version": "1"}
    )
    assert extra.json()["detail"] == "- Additional property version is not allowed\n"


@pytest.mark.parametrize(
    ("fault", "model", "error"),
    [
        (Fault.failed, SCHNELL, sim_replicate.INTERRUPTED),
        (Fault.moderation, PRO, sim_replicate.E005),
        (Fault.moderation_output, SCHNELL, sim_replicate.FLUX_NSFW),
        (Fault.moderation_output, PRO, sim_replicate.E005),
    ],
)
def test_job_faults_end_the_prediction_failed(
    sim: SimulatorHandle, fault: Fault, model: str, error: str
) -> None:
    sim.reset(latency_scale=SCALE, fault_rate=1.0, faults=[fault.value])
    prediction = finish(client(sim).models.predictions.create(model=model, input={"prompt": "x"}))
    assert prediction.status == "failed" and prediction.error == error and prediction.output is None
    with pytest.raises(ModelError, match=r"E005|NSFW|code: PA"):
        client(sim).run(model, input={"prompt": "x"})


def test_the_safety_checker_drops_flagged_images_and_keeps_the_rest(sim: SimulatorHandle) -> None:
    sim.reset(latency_scale=SCALE, fault_rate=1.0, faults=[Fault.moderation_output.value])
    made = client(sim).models.predictions.create(model=SCHNELL, input={"prompt": "x", "num_outputs": 2})
    finish(made)
    assert made.status == "succeeded" and len(made.output) == 1
    assert "NSFW content detected in image 0" in made.logs
    unchecked = {"prompt": "x", "disable_safety_checker": True}
    assert finish(client(sim).models.predictions.create(model=SCHNELL, input=unchecked)).status == "succeeded"


def test_image_inputs_frame_img2img_and_non_images_fail(sim: SimulatorHandle) -> None:
    replicate_client = client(sim)
    with pytest.raises(ReplicateError) as refused:
        replicate_client.models.predictions.create(model="black-forest-labs/flux-dev", input={"prompt": "x",
                                                                                             "image": "photo.png"})  # fmt: skip
    assert (
        refused.value.status == 422 and "- input.image: Does not match format 'uri'" in refused.value.detail
    )
    source = data_uri(still("a harbour", 600, 400, "png"), "image/png")
    edited = finish(replicate_client.models.predictions.create(
        model="black-forest-labs/flux-dev", input={"prompt": "at night", "image": source, "output_format": "jpg"}
    ))  # fmt: skip
    assert image_size(httpx.get(edited.output[0]).content) == (608, 400)  # the input's frame, sides to 16
    # A data URI that is no image passes the API (it is a URI); the model fails when it cannot open it.
    text = data_uri(b"these are not pixels", "image/png")
    broken = finish(
        replicate_client.models.predictions.create(model=PRO, input={"prompt": "x", "image_prompt": text})
    )
    assert broken.status == "failed" and broken.error.startswith("cannot identify image file")


def test_expired_and_removed_outputs(sim: SimulatorHandle) -> None:
    sim.reset(latency_scale=SCALE, fault_rate=1.0, faults=[Fault.expired.value])
    expired = finish(client(sim).models.predictions.create(model=PRO, input={"prompt": "x"}))
    assert expired.status == "succeeded" and httpx.get(expired.output).status_code == 404
    sim.reset(latency_scale=SCALE, output_ttl_s=0.2)
    made = finish(client(sim).models.predictions.create(model=SCHNELL, input={"prompt": "x"}))
    link = made.output[0]
    assert httpx.get(link).status_code == 200
    time.sleep(0.3)  # past the output lifetime: the prediction drops its output and the link is gone
    made.reload()
    assert made.output is None and raw(sim, "GET", f"/v1/predictions/{made.id}").json()["data_removed"]
    assert httpx.get(link).status_code == 404


def test_insufficient_credit_and_throttling(sim: SimulatorHandle) -> None:
    httpx.post(f"{sim.url}/replicate/_sim/billing", json={"balance_usd": 0}).raise_for_status()
    with pytest.raises(ReplicateError) as broke:
        client(sim).models.predictions.create(model=SCHNELL, input={"prompt": "x"})
    assert broke.value.status == 402 and broke.value.title == "Insufficient credit"
    sim.reset(latency_scale=SCALE, fault_rate=1.0, faults=[Fault.rate_limited.value], retry_after_s=2)
    throttled = raw(sim, "POST", f"/v1/models/{SCHNELL}/predictions", json={"input": {"prompt": "x"}})
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "2"
    assert throttled.json() == {"detail": "Request was throttled. Your rate limit resets in ~2s."}
    # The SDK retries GETs on 429/503/504 but never a POST: one create, one request.
    with pytest.raises(ReplicateError) as limited:
        client(sim).models.predictions.create(model=SCHNELL, input={"prompt": "x"})
    assert limited.value.status == 429
    assert len([r for r in sim.requests() if r["method"] == "POST"]) == 2


class Hooks:
    """A webhook receiver on a loopback port: every post's headers and raw body, in order."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Condition()
        hooks = self

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers["content-length"]))
                self.send_response(200)
                self.end_headers()
                with hooks.arrived:
                    hooks.posts.append((dict(self.headers), raw))
                    hooks.arrived.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        self.url = f"http://127.0.0.1:{self.server.server_port}/replicate-hook"

    def wait(self, count: int, timeout: float = 5.0) -> list[tuple[dict[str, str], bytes]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.posts) >= count, timeout), self.posts
            return list(self.posts)


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    receiver = Hooks()
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_a_webhook_gets_the_final_prediction_once_signed_as_the_sdk_validates(
    sim: SimulatorHandle, hooks: Hooks
) -> None:
    replicate_client = client(sim)
    made = replicate_client.models.predictions.create(
        model=SCHNELL, input={"prompt": "x"}, webhook=hooks.url, webhook_events_filter=["completed"]
    )
    finish(made)
    [(headers, raw)] = hooks.wait(1)
    time.sleep(0.3)  # well past the end: nothing more comes

    body = json.loads(raw)
    assert len(hooks.posts) == 1 and body["id"] == made.id and body["status"] == "succeeded"
    assert body["output"] == made.output and body["completed_at"]
    secret = replicate_client.webhooks.default.secret()
    assert secret.key.startswith("whsec_")
    Webhooks.validate(headers=headers, body=raw.decode(), secret=secret, tolerance=60)  # raises if not valid
    forged = raw.decode().replace('"succeeded"', '"failed"')
    with pytest.raises(InvalidSignatureError):
        Webhooks.validate(headers=headers, body=forged, secret=secret)


def test_a_cancel_is_posted_at_once_and_a_filter_without_completed_gets_no_post(
    sim: SimulatorHandle, hooks: Hooks
) -> None:
    replicate_client = client(sim)
    starts_only = replicate_client.predictions.create(
        version=SDXL_VERSION, input={"prompt": "x"}, webhook=hooks.url, webhook_events_filter=["start"]
    )
    running = replicate_client.predictions.create(
        version=SDXL_VERSION, input={"prompt": "x"}, webhook=hooks.url
    )
    began = time.monotonic()
    running.cancel()
    [(_, raw)] = hooks.wait(1)
    posted_after = time.monotonic() - began

    assert posted_after < 0.5  # sdxl's run is a second: the post came with the cancel, not at its end
    assert json.loads(raw)["id"] == running.id and json.loads(raw)["status"] == "canceled"
    assert finish(starts_only).status == "succeeded"
    time.sleep(0.2)
    assert len(hooks.posts) == 1  # the other asked for "start" only, which is not posted
