"""The Stability AI simulator over loopback HTTP with plain httpx (v2beta has no official Python SDK)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from PIL import Image, ImageChops, ImageFilter, ImageStat

from simulator import stability
from simulator.media import still

if TYPE_CHECKING:
    from tests.simulator_fixture import SimulatorHandle

GENERATE = "/v2beta/stable-image/generate"


@pytest.fixture
def sim(simulator: SimulatorHandle) -> Iterator[SimulatorHandle]:
    simulator.reset(latency_scale=0.01)
    yield simulator
    httpx.post(
        f"{simulator.url}{stability.PREFIX}/_sim/credits", json={"credits": stability.STARTING_CREDITS}
    )


@pytest.fixture
def client(sim: SimulatorHandle) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {stability.SIMULATOR_KEY}"}
    with httpx.Client(base_url=sim.url + stability.PREFIX, headers=headers, timeout=30) as http:
        yield http


def post(
    client: httpx.Client, service: str, fields: dict[str, Any], accept: str = "image/*", **files: Any
) -> httpx.Response:
    """A multipart POST as Stability's docs send it (`files` forces multipart even with no upload)."""
    data = {k: str(v) for k, v in fields.items()}
    parts = {name: (f"{name}.bin", blob) for name, blob in files.items()} or {"none": ("", b"")}
    return client.post(f"{GENERATE}/{service}", data=data, files=parts, headers={"accept": accept})


def assert_error(response: httpx.Response, status: int, name: str) -> list[str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"id", "name", "errors"} and body["name"] == name
    assert len(body["id"]) == 32 and body["errors"] and all(isinstance(e, str) for e in body["errors"])
    return body["errors"]


@pytest.mark.parametrize(
    ("service", "fields", "accept", "size", "fmt"),
    [
        ("ultra", {"aspect_ratio": "16:9", "output_format": "png"}, "image/*", (1360, 765), "PNG"),
        ("core", {"aspect_ratio": "9:16", "output_format": "webp", "style_preset": "cinematic"},
         "application/json", (945, 1680), "WEBP"),
        ("sd3", {"model": "sd3.5-large-turbo", "output_format": "jpeg", "seed": 42}, "image/*",
         (1024, 1024), "JPEG"),
        ("sd3", {"model": "sd3.5-flash", "aspect_ratio": "21:9", "cfg_scale": 1.5}, "application/json",
         (1554, 666), "PNG"),
    ],
)  # fmt: skip
def test_generates_a_real_image_of_the_asked_shape_and_format(
    client: httpx.Client, service: str, fields: dict[str, Any], accept: str, size: tuple[int, int], fmt: str
) -> None:
    response = post(client, service, {"prompt": "a lighthouse at dusk", **fields}, accept=accept)
    assert response.status_code == 200, response.text
    mime = f"image/{fmt.lower()}"
    if accept == "application/json":
        assert response.headers["content-type"] == f"application/json; type={mime}"
        body = response.json()
        assert body["finish_reason"] == "SUCCESS" and 1 <= body["seed"] <= stability.MAX_SEED
        data = base64.b64decode(body["image"])
        assert "finish-reason" not in response.headers  # only in the body for JSON
    else:
        assert response.headers["content-type"] == mime
        assert response.headers["finish-reason"] == "SUCCESS"
        assert int(response.headers["seed"]) == fields.get("seed", int(response.headers["seed"]))
        data = response.content
    image = Image.open(io.BytesIO(data))
    assert (image.size, image.format) == (size, fmt)


def test_every_aspect_ratio_is_exact() -> None:
    for (_, ratio), (width, height) in stability.SIZES.items():
        a, b = (int(x) for x in ratio.split(":"))
        assert width * b == height * a


def test_a_bad_or_missing_key_is_refused(sim: SimulatorHandle) -> None:
    url = f"{sim.url}{stability.PREFIX}{GENERATE}/core"
    files = {"prompt": (None, "x")}
    assert_error(httpx.post(url, files=files), 401, "unauthorized")
    bad = {"authorization": "Bearer sk-short"}
    assert_error(httpx.post(url, files=files, headers=bad), 401, "unauthorized")
    balance = httpx.get(f"{sim.url}{stability.PREFIX}/v1/user/balance")
    assert (
        balance.status_code == 401
        and balance.json()["name"] == "unauthorized"
        and "message" in balance.json()
    )


def test_validation_lists_every_bad_field(client: httpx.Client) -> None:
    fields = {"aspect_ratio": "4:3", "output_format": "gif", "seed": -1, "style_preset": "noir"}
    errors = assert_error(post(client, "core", fields), 400, "bad_request")
    assert errors[0] == "prompt: is required"
    assert {e.split(":")[0] for e in errors} == {
        "prompt",
        "aspect_ratio",
        "output_format",
        "seed",
        "style_preset",
    }
    errors = assert_error(
        post(client, "sd3", {"prompt": "x", "model": "sd3.5-xl", "cfg_scale": 11}), 400, "bad_request"
    )
    assert {e.split(":")[0] for e in errors} == {"model", "cfg_scale"}
    too_long = assert_error(post(client, "ultra", {"prompt": "x" * 10_001}), 400, "bad_request")
    assert too_long == ["prompt: must be between 1 and 10000 characters"]


def test_a_json_body_is_refused(client: httpx.Client) -> None:
    response = client.post(f"{GENERATE}/core", json={"prompt": "x"}, headers={"accept": "image/*"})
    assert_error(response, 400, "bad_request")


def png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_to_image_keeps_the_input_shape(client: httpx.Client) -> None:
    fields = {"prompt": "watercolour", "strength": 0.6, "output_format": "jpeg"}
    ultra = post(client, "ultra", fields, image=png((300, 200)))
    assert ultra.status_code == 200, ultra.text
    width, height = Image.open(io.BytesIO(ultra.content)).size
    assert abs(width / height - 1.5) < 0.01 and abs(width * height - 1024 * 1024) < 4000
    sd3 = post(
        client, "sd3", {**fields, "mode": "image-to-image", "model": "sd3-medium"}, image=png((128, 256))
    )
    assert sd3.status_code == 200, sd3.text
    assert Image.open(io.BytesIO(sd3.content)).size == (724, 1448)


def test_a_non_image_upload_and_incomplete_image_to_image_are_refused(client: httpx.Client) -> None:
    strong = {"prompt": "x", "strength": 0.5}
    errors = assert_error(post(client, "ultra", strong, image=b"%PDF-1.4 not an image"), 400, "bad_request")
    assert errors == ["image: must be a jpeg, png or webp image"]
    errors = assert_error(post(client, "ultra", {"prompt": "x"}, image=png((256, 256))), 400, "bad_request")
    assert errors == ["strength: is required when image is provided"]
    errors = assert_error(post(client, "ultra", strong, image=png((32, 32))), 400, "bad_request")
    assert errors[0].startswith("image: width and height must be at least 64")
    i2i = {**strong, "mode": "image-to-image"}
    errors = assert_error(post(client, "sd3", i2i), 400, "bad_request")
    assert errors == ["image: is required for image-to-image requests"]
    assert_error(post(client, "sd3", {"prompt": "x"}, image=png((256, 256))), 400, "bad_request")


def test_input_moderation_is_a_403(sim: SimulatorHandle, client: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation"])
    before = client.get("/v1/user/balance").json()["credits"]
    errors = assert_error(post(client, "core", {"prompt": "something flagged"}), 403, "content_moderation")
    assert "flagged by our content moderation system" in errors[0]
    assert client.get("/v1/user/balance").json()["credits"] == before  # not charged


def test_output_moderation_is_a_blurred_200_marked_content_filtered(
    sim: SimulatorHandle, client: httpx.Client
) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    response = post(client, "core", {"prompt": "a lighthouse at dusk"})
    assert response.status_code == 200 and response.headers["finish-reason"] == "CONTENT_FILTERED"
    as_json = post(client, "sd3", {"prompt": "a lighthouse at dusk"}, accept="application/json")
    assert as_json.json()["finish_reason"] == "CONTENT_FILTERED"
    filtered = Image.open(io.BytesIO(response.content)).convert("L")
    sharp = Image.open(io.BytesIO(still("a lighthouse at dusk", *filtered.size))).convert("L")

    def detail(image: Image.Image) -> float:
        """How much fine detail an image has: its mean difference from a slightly blurred copy."""
        return ImageStat.Stat(ImageChops.difference(image, image.filter(ImageFilter.GaussianBlur(3)))).mean[0]

    assert detail(filtered) < detail(sharp) / 10


def test_a_failed_generation_is_a_500(sim: SimulatorHandle, client: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["failed"])
    assert_error(post(client, "ultra", {"prompt": "x"}), 500, "internal_error")


def test_the_frames_429_is_stabilitys_rate_limit_body(sim: SimulatorHandle, client: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["429"])
    response = post(client, "core", {"prompt": "x"})
    errors = assert_error(response, 429, "rate_limit_exceeded")
    assert "timed out for 60 seconds" in errors[0] and "retry-after" not in response.headers


def test_credits_are_charged_and_an_empty_balance_is_a_402(
    sim: SimulatorHandle, client: httpx.Client
) -> None:
    client.post("/_sim/credits", json={"credits": 10})
    assert post(client, "ultra", {"prompt": "x"}).status_code == 200
    assert client.get("/v1/user/balance").json() == {"credits": 2.0}
    errors = assert_error(post(client, "core", {"prompt": "x"}), 402, "payment_required")
    assert errors[0].startswith("You lack sufficient credits")


def test_an_expired_fault_does_not_apply_to_an_inline_image(
    sim: SimulatorHandle, client: httpx.Client
) -> None:
    """Stability answers with the image itself: there is no link to expire."""
    sim.configure(fault_rate=1.0, faults=["expired"], output_ttl_s=0.001)
    response = post(client, "core", {"prompt": "x"})
    assert response.status_code == 200 and response.headers["finish-reason"] == "SUCCESS"
