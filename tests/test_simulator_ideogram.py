"""The Ideogram 3.0 simulator over loopback HTTP with plain httpx (Ideogram has no official Python SDK)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from PIL import Image

from simulator import ideogram

if TYPE_CHECKING:
    from tests.simulator_fixture import SimulatorHandle

GENERATE = "/v1/ideogram-v3/generate"


@pytest.fixture
def sim(simulator: SimulatorHandle) -> Iterator[SimulatorHandle]:
    simulator.reset(latency_scale=0.01)
    yield simulator
    httpx.post(
        f"{simulator.url}{ideogram.PREFIX}/_sim/credits", json={"credits": ideogram.STARTING_CREDITS_USD}
    )


@pytest.fixture
def client(sim: SimulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sim.url + ideogram.PREFIX, headers={"Api-Key": ideogram.SIMULATOR_KEY}, timeout=30
    ) as http:
        yield http


def post(client: httpx.Client, fields: dict[str, Any], files: list[tuple[str, bytes]] = ()) -> httpx.Response:
    """Multipart as the docs send it: text fields as parts, reference images as repeated file parts."""
    parts: list[tuple[str, Any]] = [(k, (None, str(v))) for k, v in fields.items()]
    parts += [(name, (f"ref{i}.png", blob, "image/png")) for i, (name, blob) in enumerate(files)]
    return client.post(GENERATE, files=parts)


def assert_problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail"} and body["status"] == status
    return body["detail"]


def png(size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_generates_images_at_the_aspect_ratios_resolution(client: httpx.Client) -> None:
    fields = {"prompt": "a neon sign that says OPEN", "aspect_ratio": "16x9", "num_images": 2, "seed": 7,
              "rendering_speed": "TURBO", "magic_prompt": "OFF", "style_type": "DESIGN"}  # fmt: skip
    response = post(client, fields)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"created", "data"} and len(body["data"]) == 2
    for i, item in enumerate(body["data"]):
        assert set(item) == {"prompt", "resolution", "is_image_safe", "seed", "url", "style_type"}
        assert item["prompt"] == fields["prompt"] and item["seed"] == 7 + i and item["is_image_safe"] is True
        assert item["resolution"] == "1312x736" and item["style_type"] == "DESIGN"
        assert "/_media/" in item["url"] and "exp=" in item["url"] and "sig=" in item["url"]
        download = httpx.get(item["url"])  # an ephemeral signed link: no Api-Key
        assert download.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(download.content))
        assert (image.size, image.format) == ((1312, 736), "PNG")


def test_resolution_is_served_exactly_and_magic_prompt_rewrites(client: httpx.Client) -> None:
    response = post(client, {"prompt": "a cat", "resolution": "832x1248", "magic_prompt": "ON"})
    item = response.json()["data"][0]
    assert (
        item["resolution"] == "832x1248" and item["prompt"].startswith("a cat") and item["prompt"] != "a cat"
    )
    assert Image.open(io.BytesIO(httpx.get(item["url"]).content)).size == (832, 1248)


def test_json_bodies_are_taken_and_urlencoded_ones_refused(client: httpx.Client) -> None:
    response = client.post(
        GENERATE, json={"prompt": "a cat", "rendering_speed": "FLASH", "aspect_ratio": "1x1"}
    )
    assert response.status_code == 200 and response.json()["data"][0]["resolution"] == "1024x1024"
    assert assert_problem(client.post(GENERATE, json={}), 400) == "'prompt' is a required property"
    assert_problem(client.post(GENERATE, data={"prompt": "a cat"}), 415)


def test_a_missing_or_bad_key_is_refused(sim: SimulatorHandle) -> None:
    url = f"{sim.url}{ideogram.PREFIX}{GENERATE}"
    files = {"prompt": (None, "a cat")}
    assert assert_problem(httpx.post(url, files=files), 401) == "No authorization token provided"
    assert_problem(httpx.post(url, files=files, headers={"Api-Key": "short"}), 401)
    assert_problem(
        httpx.post(url, files=files, headers={"Authorization": f"Bearer {ideogram.SIMULATOR_KEY}"}), 401
    )


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"prompt": "x", "aspect_ratio": "16:9"}, "'aspect_ratio'"),
        ({"prompt": "x", "aspect_ratio": "1x1", "resolution": "1024x1024"}, "Only one of"),
        ({"prompt": "x", "resolution": "1000x1000"}, "'resolution'"),
        ({"prompt": "x", "rendering_speed": "FAST"}, "'rendering_speed'"),
        ({"prompt": "x", "magic_prompt": "YES"}, "'magic_prompt'"),
        ({"prompt": "x", "style_type": "ANIME"}, "'style_type'"),
        ({"prompt": "x", "num_images": 9}, "maximum of 8"),
        ({"prompt": "x", "seed": 2_147_483_648}, "maximum of 2147483647"),
        ({"prompt": "x", "color_palette": '{"name": "NOIR"}'}, "color_palette.name"),
        ({"prompt": "x", "color_palette": '{"members": [{"color_hex": "red"}]}'}, "color_hex"),
        ({"prompt": "x", "style_codes": "AABBCCDD", "style_type": "GENERAL"}, "style_codes cannot"),
    ],
)  # fmt: skip
def test_bad_fields_are_a_400_problem(client: httpx.Client, fields: dict[str, Any], needle: str) -> None:
    assert needle in assert_problem(post(client, fields), 400)


def test_reference_images_must_be_images(client: httpx.Client) -> None:
    palette = '{"members": [{"color_hex": "#FF0000", "color_weight": 0.5}]}'
    refs = [("style_reference_images", png()), ("style_reference_images", png((80, 40)))]
    ok = post(
        client,
        {"prompt": "x", "color_palette": palette},
        files=[*refs, ("character_reference_images", png())],
    )
    assert ok.status_code == 200, ok.text
    bad = post(client, {"prompt": "x"}, files=[("style_reference_images", b"GIF89a not really")])
    assert "style_reference_images" in assert_problem(bad, 400)
    two = post(client, {"prompt": "x"}, files=[("character_reference_images", png())] * 2)
    assert "At most 1" in assert_problem(two, 400)
    masks = post(client, {"prompt": "x"}, files=[("character_reference_images_mask", png())])
    assert "must match" in assert_problem(masks, 400)


def test_input_moderation_is_a_422_safety_refusal(sim: SimulatorHandle, client: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation"])
    response = post(client, {"prompt": "something unsafe"})
    assert response.status_code == 422 and response.json() == {"error": "Prompt failed the safety check."}


def test_output_moderation_withholds_the_image(sim: SimulatorHandle, client: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    response = post(client, {"prompt": "x", "num_images": 2})
    assert response.status_code == 200
    assert [(d["is_image_safe"], d["url"]) for d in response.json()["data"]] == [(False, None), (False, None)]


def test_a_failed_generation_is_a_500(sim: SimulatorHandle, client: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["failed"])
    assert_problem(post(client, {"prompt": "x"}), 500)


def test_an_expired_fault_makes_the_link_answer_gone(sim: SimulatorHandle, client: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["expired"])
    url = post(client, {"prompt": "x"}).json()["data"][0]["url"]
    gone = httpx.get(url)
    assert gone.status_code == 403 and b"expired" in gone.content


def test_links_expire_after_the_output_ttl(sim: SimulatorHandle, client: httpx.Client) -> None:
    sim.configure(output_ttl_s=0.3)
    url = post(client, {"prompt": "x", "rendering_speed": "FLASH"}).json()["data"][0]["url"]
    assert httpx.get(url).status_code == 200
    time.sleep(0.4)
    assert httpx.get(url).status_code == 403


def test_a_request_the_balance_cannot_pay_is_a_402(sim: SimulatorHandle, client: httpx.Client) -> None:
    client.post("/_sim/credits", json={"credits": 0.1})
    assert post(client, {"prompt": "x", "rendering_speed": "QUALITY"}).status_code == 200  # $0.09
    assert client.get("/_sim/credits").json()["credits"] == pytest.approx(0.01)
    assert_problem(post(client, {"prompt": "x", "rendering_speed": "TURBO"}), 402)
