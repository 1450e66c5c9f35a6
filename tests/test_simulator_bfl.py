"""simulator/bfl.py over loopback HTTP with plain httpx, as BFL has no official SDK."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from PIL import Image

from simulator.bfl import SIMULATOR_KEY

KEY = {"x-key": SIMULATOR_KEY}
CREDITS = 1000.0


@pytest.fixture
def bfl(simulator: Any) -> Iterator[httpx.Client]:
    # Faults off first: the control routes sit under /bfl, where the frame injects them.
    simulator.reset(latency_scale=0.01, latency_jitter=0.0)
    with httpx.Client(base_url=f"{simulator.url}/bfl", timeout=10) as client:
        client.post("/_sim/credits", json={"credits": CREDITS}).raise_for_status()
        client.post("/_sim/limits", json={"concurrency": 24, "kontext_max_concurrency": 6}).raise_for_status()
        yield client


def _png(width: int = 64, height: int = 48) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _submit(client: httpx.Client, model: str, body: dict[str, Any], base: str = "") -> dict[str, Any]:
    response = client.post(f"{base}/v1/{model}", json=body, headers=KEY)
    assert response.status_code == 200, response.text
    return response.json()


def _wait(polling_url: str, timeout: float = 10.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll the polling_url as BFL asks until the task leaves Pending; the final body and every body seen."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(polling_url, headers=KEY)
        assert response.status_code == 200, response.text
        seen.append(response.json())
        if seen[-1]["status"] != "Pending":
            return seen[-1], seen
        time.sleep(0.02)
    raise AssertionError(f"still Pending after {timeout} s: {seen[-1]}")


def _image(url: str) -> Image.Image:
    response = httpx.get(url)  # a signed delivery link: no x-key
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))


def test_text_to_image_delivers_a_png_of_the_asked_size(bfl: httpx.Client, simulator: Any) -> None:
    # ~2 s, 1.8 s of it running: a loaded CI machine's slow polls still land in it (0.5 s did not, 1 in 1750)
    simulator.configure(latency_scale=0.4)
    body = {"prompt": "a blue bottle on sand", "width": 512, "height": 768, "seed": 7, "output_format": "png"}
    created = _submit(bfl, "flux-pro-1.1", body)
    assert set(created) == {"id", "polling_url", "cost", "input_mp", "output_mp"}
    assert created["polling_url"].endswith(f"/v1/get_result?id={created['id']}")
    assert created["cost"] == 4.0 and created["output_mp"] == pytest.approx(0.38)

    final, seen = _wait(created["polling_url"])
    assert {"id", "status", "result", "progress", "details", "preview"} <= set(final)
    assert seen[0]["status"] == "Pending" and seen[0]["result"] is None
    assert any(0 < (body["progress"] or 0) < 1 for body in seen), "a running task reports progress"
    assert final["status"] == "Ready"
    result = final["result"]
    assert result["prompt"] == body["prompt"] and result["seed"] == 7
    assert result["end_time"] >= result["start_time"]
    image = _image(result["sample"])
    assert (image.format, image.size) == ("PNG", (512, 768))
    assert bfl.get("/v1/credits", headers=KEY).json() == {"credits": CREDITS - 4}


def test_defaults_are_a_1024x768_jpeg_and_unknown_fields_are_ignored(bfl: httpx.Client) -> None:
    # FLUX1.1 [pro] has no aspect_ratio: like BFL's FastAPI, the simulator ignores it rather than refusing it.
    created = _submit(bfl, "flux-pro-1.1", {"prompt": "a pier at dusk", "aspect_ratio": "9:16"})
    final, _ = _wait(created["polling_url"])
    image = _image(final["result"]["sample"])
    assert (image.format, image.size) == ("JPEG", (1024, 768))


def test_ultra_renders_about_4_megapixels_at_the_aspect_ratio(bfl: httpx.Client) -> None:
    created = _submit(bfl, "flux-pro-1.1-ultra", {"prompt": "a pier", "aspect_ratio": "1:1", "raw": True})
    assert created["output_mp"] == 4.0 and created["cost"] == 6.0
    final, _ = _wait(created["polling_url"])
    assert _image(final["result"]["sample"]).size == (2048, 2048)


def test_regional_base_hands_the_task_to_its_cluster_and_only_that_cluster_answers(bfl: httpx.Client) -> None:
    body = {
        "prompt": "make it night",
        "input_image": _png(640, 480),
        "aspect_ratio": "16:9",
        "output_format": "jpeg",
    }
    created = _submit(bfl, "flux-kontext-pro", body, base="/eu")
    polling_url = created["polling_url"]
    assert f"/bfl/eu1/v1/get_result?id={created['id']}" in polling_url
    assert created["input_mp"] > 0

    for wrong in ("/us1", "", "/eu"):  # another cluster, the global host, the multi-cluster region
        response = bfl.get(f"{wrong}/v1/get_result", params={"id": created["id"]}, headers=KEY)
        assert response.status_code == 404
        assert response.json()["status"] == "Task not found"

    final, _ = _wait(polling_url)
    assert "/bfl/delivery-eu1/" in final["result"]["sample"] and "se=" in final["result"]["sample"]
    image = _image(final["result"]["sample"])
    assert image.format == "JPEG"
    assert image.size[0] / image.size[1] == pytest.approx(16 / 9, rel=0.03)


def test_the_global_base_spreads_tasks_over_clusters(bfl: httpx.Client) -> None:
    hosts = {
        _submit(bfl, "flux-dev", {"prompt": f"cup {i}"})["polling_url"].split("/bfl/")[1][:3]
        for i in range(2)
    }
    assert hosts == {"eu1", "us1"}


def test_auth_refusals_in_bfls_shape(bfl: httpx.Client) -> None:
    body = {"prompt": "a cup"}
    missing = bfl.post("/v1/flux-dev", json=body)
    assert (missing.status_code, missing.json()) == (
        403,
        {"detail": "Not authenticated - Invalid Authentication"},
    )
    malformed = bfl.post("/v1/flux-dev", json=body, headers={"x-key": "bad apiKey"})
    assert (malformed.status_code, malformed.json()) == (422, {"detail": "Invalid API key format"})
    unknown = bfl.post("/v1/flux-dev", json=body, headers={"x-key": "00000000-0000-0000-0000-000000000000"})
    assert unknown.status_code == 403
    bearer = bfl.post("/v1/flux-dev", json=body, headers={"Authorization": f"Bearer {SIMULATOR_KEY}"})
    assert bearer.status_code == 403, "BFL reads x-key, not Authorization"
    assert bfl.get("/v1/credits").status_code == 403
    assert bfl.get("/eu1/v1/get_result", params={"id": "x"}).status_code == 403


@pytest.mark.parametrize(
    ("model", "body", "loc", "kind"),
    [
        ("flux-pro-1.1", {"prompt": "x", "width": 1000}, ["body", "width"], "multiple_of"),
        ("flux-pro-1.1", {"prompt": "x", "height": 1472}, ["body", "height"], "less_than_equal"),
        (
            "flux-pro-1.1",
            {"prompt": "x", "safety_tolerance": 7},
            ["body", "safety_tolerance"],
            "less_than_equal",
        ),
        ("flux-dev", {"prompt": "x", "output_format": "webp"}, ["body", "output_format"], "literal_error"),
        ("flux-dev", {"prompt": "x", "guidance": 9}, ["body", "guidance"], "less_than_equal"),
        (
            "flux-pro-1.1-ultra",
            {"prompt": "x", "aspect_ratio": "1:5"},
            ["body", "aspect_ratio"],
            "value_error",
        ),
        ("flux-kontext-max", {"aspect_ratio": "1:1"}, ["body", "prompt"], "missing"),
        ("flux-2-pro", {"prompt": "x", "width": 1000}, ["body", "width"], "multiple_of"),
        ("flux-2-pro", {"prompt": "x", "width": 4096, "height": 4096}, ["body"], "value_error"),
        ("flux-2-flex", {"prompt": "x", "steps": 51}, ["body", "steps"], "less_than_equal"),
        (
            "flux-dev",
            {"prompt": "x", "webhook_url": "ftp://hooks.example"},
            ["body", "webhook_url"],
            "url_scheme",
        ),
    ],
)
def test_validation_refusals_are_fastapi_422s(
    bfl: httpx.Client, model: str, body: dict[str, Any], loc: list[str], kind: str
) -> None:
    response = bfl.post(f"/v1/{model}", json=body, headers=KEY)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (loc, kind)
    assert {"msg", "input"} <= set(error)


def test_an_unknown_model_and_an_unknown_task_are_404s(bfl: httpx.Client) -> None:
    response = bfl.post("/v1/flux-pro-2.7", json={"prompt": "x"}, headers=KEY)
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
    unknown = bfl.get(
        "/eu1/v1/get_result", params={"id": "b1d0c7e2-0000-4000-8000-000000000000"}, headers=KEY
    )
    assert unknown.status_code == 404
    assert unknown.json() == {"id": "b1d0c7e2-0000-4000-8000-000000000000", "status": "Task not found",
                              "result": None, "progress": None, "details": None, "preview": None}  # fmt: skip
    no_id = bfl.get("/eu1/v1/get_result", headers=KEY)
    assert no_id.status_code == 422 and no_id.json()["detail"][0]["loc"] == ["query", "id"]


@pytest.mark.parametrize(
    ("fault", "status"),
    [("moderation", "Request Moderated"), ("moderation_output", "Content Moderated"), ("failed", "Error")],
)
def test_job_faults_end_in_bfls_statuses_and_are_not_charged(
    bfl: httpx.Client, simulator: Any, fault: str, status: str
) -> None:
    simulator.configure(fault_rate=1.0, faults=[fault])
    created = _submit(bfl, "flux-pro-1.1", {"prompt": "a cup"})
    final, _ = _wait(created["polling_url"])
    assert final["status"] == status and final["result"] is None
    if status.endswith("Moderated"):
        assert final["details"]["Moderation Reasons"]
    else:
        assert final["error"]
    simulator.configure(fault_rate=0.0)
    assert bfl.get("/v1/credits", headers=KEY).json()["credits"] == CREDITS


@pytest.mark.parametrize(
    ("model", "field"),
    [("flux-kontext-pro", "input_image"), ("flux-pro-1.1", "image_prompt"), ("flux-2-pro", "input_image_3")],
)
def test_an_input_that_is_not_an_image_is_a_422(bfl: httpx.Client, model: str, field: str) -> None:
    for value in (
        base64.b64encode(b"not an image").decode(),
        "%%% not base64 %%%",
        "data:text/plain;base64,aGk=",
    ):
        response = bfl.post(f"/v1/{model}", json={"prompt": "x", field: value}, headers=KEY)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", field]
    # URLs are taken by syntax (the simulator is offline), as BFL fetches them itself.
    _submit(bfl, model, {"prompt": "x", field: "https://images.example/ref.png"})


def test_sample_links_expire_and_a_new_poll_signs_a_fresh_one(bfl: httpx.Client, simulator: Any) -> None:
    simulator.configure(output_ttl_s=0.3)
    created = _submit(bfl, "flux-dev", {"prompt": "a cup", "width": 256, "height": 256})
    final, _ = _wait(created["polling_url"])
    time.sleep(0.4)
    stale = httpx.get(final["result"]["sample"])
    assert stale.status_code == 403 and b"AuthenticationFailed" in stale.content
    fresh, _ = _wait(created["polling_url"])
    assert fresh["result"]["sample"] != final["result"]["sample"]
    assert _image(fresh["result"]["sample"]).size == (256, 256)


def test_the_expired_fault_makes_every_sample_link_gone(bfl: httpx.Client, simulator: Any) -> None:
    simulator.configure(fault_rate=1.0, faults=["expired"])
    created = _submit(bfl, "flux-dev", {"prompt": "a cup", "width": 256, "height": 256})
    final, _ = _wait(created["polling_url"])
    simulator.configure(fault_rate=0.0)
    assert final["status"] == "Ready"
    assert httpx.get(final["result"]["sample"]).status_code == 403
    again, _ = _wait(created["polling_url"])
    assert httpx.get(again["result"]["sample"]).status_code == 403


def test_insufficient_credits_is_a_402(bfl: httpx.Client) -> None:
    bfl.post("/_sim/credits", json={"credits": 5}).raise_for_status()
    _submit(bfl, "flux-pro-1.1", {"prompt": "a cup"})
    assert bfl.get("/v1/credits", headers=KEY).json() == {"credits": 1.0}
    response = bfl.post("/v1/flux-pro-1.1", json={"prompt": "a cup"}, headers=KEY)
    assert response.status_code == 402 and isinstance(response.json()["detail"], str)


def test_in_flight_tasks_are_capped_with_a_429(bfl: httpx.Client, simulator: Any) -> None:
    simulator.configure(
        latency_scale=0.2, latency_jitter=0
    )  # ~1 s tasks, all alike: in flight while we submit
    bfl.post("/_sim/limits", json={"concurrency": 3, "kontext_max_concurrency": 1}).raise_for_status()
    kontext = _submit(bfl, "flux-kontext-max", {"prompt": "a cup"})
    refused = bfl.post("/v1/flux-kontext-max", json={"prompt": "a cup"}, headers=KEY)
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    first = _submit(bfl, "flux-dev", {"prompt": "a cup"})
    _submit(bfl, "flux-dev", {"prompt": "a cup"})
    assert bfl.post("/v1/flux-dev", json={"prompt": "a cup"}, headers=KEY).status_code == 429
    _wait(kontext["polling_url"])
    _wait(first["polling_url"])
    time.sleep(0.3)  # every task of the first batch has ended by now
    _submit(bfl, "flux-dev", {"prompt": "a cup"})


def test_a_webhook_gets_the_outcome_signed_with_the_secret(bfl: httpx.Client) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    arrived = threading.Event()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            received.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            arrived.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = f"http://127.0.0.1:{server.server_port}/bfl-hook"
        created = _submit(
            bfl, "flux-dev", {"prompt": "a cup", "webhook_url": hook, "webhook_secret": "s3cret"}
        )
        assert arrived.wait(10)
    finally:
        server.shutdown()
    headers, raw = received[0]
    body = json.loads(raw)
    assert body["id"] == created["id"] and body["status"] == "Ready" and body["result"]["sample"]
    expected = hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
    assert headers["X-BFL-Signature"] == f"sha256={expected}"
