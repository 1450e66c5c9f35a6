"""simulator/openai.py driven by the official `openai` SDK over loopback HTTP: the Images API's wire contract."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from simulator import openai as sim_openai

FAST = {"latency_scale": 0.002, "latency_jitter": 0.0}


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    simulator.reset(**FAST)
    httpx.post(f"{simulator.url}/openai/v1/_sim/quota", json={"exhausted": False}).raise_for_status()
    yield simulator


def _client(sim: Any, key: str = sim_openai.SIMULATOR_KEY) -> openai.OpenAI:
    # max_retries=0: a retried create is a second paid generation.
    return openai.OpenAI(base_url=f"{sim.url}/openai/v1", api_key=key, max_retries=0)


def _png(size: tuple[int, int], mode: str = "RGB", color: Any = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _decoded(b64: str | None) -> Image.Image:
    assert b64 is not None
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def _error(exc: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, Any]:
    body = exc.value.body
    assert isinstance(body, dict) and {"message", "type", "param", "code"} <= body.keys()
    return body


def test_generation_returns_images_of_the_asked_size_and_format(sim: Any) -> None:
    raw = _client(sim).images.with_raw_response.generate(
        model="gpt-image-2", prompt="a blue bottle on sand", size="1536x864", n=2, quality="low",
        output_format="jpeg", output_compression=80, user="user-42",
    )  # fmt: skip
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["x-ratelimit-remaining-requests"]) < int(raw.headers["x-ratelimit-limit-requests"])
    result = raw.parse()
    assert result.data is not None and len(result.data) == 2
    for item in result.data:
        assert item.url is None
        image = _decoded(item.b64_json)
        assert (image.format, image.size) == ("JPEG", (1536, 864))
    assert (result.size, result.quality, result.output_format, result.background) == (
        "1536x864", "low", "jpeg", "opaque",
    )  # fmt: skip
    assert result.safety_identifier == "user-42"
    assert result.usage is not None and result.usage.output_tokens == 2 * round(272 * 1536 * 864 / 1024**2)
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens
    (call,) = [r for r in sim.requests() if r["path"] == "/openai/v1/images/generations"]
    assert call["headers"]["authorization"] == "Bearer …" and call["status"] == 200


def test_auto_size_and_a_transparent_background(sim: Any) -> None:
    result = _client(sim).images.generate(
        model="gpt-image-1.5", prompt="a logo", background="transparent", output_format="webp"
    )
    image = _decoded(result.data[0].b64_json if result.data else None)
    assert (image.format, image.size, image.mode) == ("WEBP", (1024, 1024), "RGBA")
    assert image.getchannel("A").getextrema() == (0, 255)
    assert (result.size, result.background, result.quality) == ("1024x1024", "transparent", "high")


def test_auth_refusals_in_openai_shape(sim: Any) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        _client(sim, "not-a-key").images.generate(model="gpt-image-2", prompt="x")
    assert _error(caught)["code"] == "invalid_api_key"
    assert caught.value.request_id and caught.value.request_id.startswith("req_")
    missing = httpx.post(
        f"{sim.url}/openai/v1/images/generations", json={"model": "gpt-image-2", "prompt": "x"}
    )
    assert missing.status_code == 401
    assert missing.json()["error"]["message"].startswith("You didn't provide an API key")


@pytest.mark.parametrize(
    ("changes", "param", "code"),
    [
        ({"model": "gpt-image-1.5", "size": "1536x864"}, "size", "invalid_value"),
        ({"size": "1000x1000"}, "size", "invalid_value"),  # not multiples of 16
        ({"size": "3840x1024"}, "size", "invalid_value"),  # wider than 3:1
        ({"background": "transparent", "output_format": "jpeg"}, "background", "invalid_value"),
        ({"output_compression": 50}, "output_compression", "invalid_value"),  # png has no compression
        (
            {"output_format": "jpeg", "output_compression": 101},
            "output_compression",
            "integer_above_max_value",
        ),
        ({"n": 11}, "n", "integer_above_max_value"),
        ({"quality": "xhigh"}, "quality", "invalid_value"),  # gpt-image-2.5 only
        ({"quality": "hd"}, "quality", "invalid_value"),
        ({"moderation": "off"}, "moderation", "invalid_value"),
        ({"response_format": "url"}, "response_format", "unknown_parameter"),
        ({"prompt": "x" * 32_001}, "prompt", "string_above_max_length"),
    ],
)
def test_validation_refusals(sim: Any, changes: dict[str, Any], param: str, code: str) -> None:
    request = {"model": "gpt-image-2", "prompt": "a bottle", **changes}
    with pytest.raises(openai.BadRequestError) as caught:
        _client(sim).images.generate(**request)
    error = _error(caught)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_the_25_family_takes_xhigh_and_custom_sizes(sim: Any) -> None:
    result = _client(sim).images.generate(
        model="gpt-image-2.5-flare", prompt="a poster", quality="xhigh", size="864x1536"
    )
    assert _decoded(result.data[0].b64_json if result.data else None).size == (864, 1536)


@pytest.mark.parametrize("model", ["dall-e-3", "dall-e-2", "gpt-image-1", "gpt-image-9"])
def test_retired_and_unknown_models_are_not_found(sim: Any, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _client(sim).images.generate(model=model, prompt="a bottle")
    error = _error(caught)
    assert error["code"] == "model_not_found" and f"`{model}`" in error["message"]
    assert ("deprecated" in error["message"]) == (model != "gpt-image-9")


@pytest.mark.parametrize("stage", ["input", "output"])
def test_moderation_faults_are_moderation_blocked(sim: Any, stage: str) -> None:
    fault = "moderation" if stage == "input" else "moderation_output"
    sim.configure(fault_rate=1.0, faults=[fault])
    with pytest.raises(openai.BadRequestError) as caught:
        _client(sim).images.generate(model="gpt-image-2", prompt="a bottle")
    error = _error(caught)
    assert (error["type"], error["code"]) == ("image_generation_user_error", "moderation_blocked")
    assert error["moderation_details"]["moderation_stage"] == stage
    assert caught.value.request_id and caught.value.request_id in error["message"]


def test_failed_fault_is_a_server_error(sim: Any) -> None:
    sim.configure(fault_rate=1.0, faults=["failed"])
    with pytest.raises(openai.InternalServerError) as caught:
        _client(sim).images.generate(model="gpt-image-2", prompt="a bottle")
    assert caught.value.status_code == 500 and _error(caught)["type"] == "server_error"


def test_expired_has_nothing_to_expire(sim: Any) -> None:
    """GPT image models answer inline base64: there is no output link, so the expired fault changes nothing."""
    sim.configure(fault_rate=1.0, faults=["expired"])
    result = _client(sim).images.generate(model="gpt-image-1-mini", prompt="a bottle", size="1024x1536")
    assert _decoded(result.data[0].b64_json if result.data else None).size == (1024, 1536)


def test_insufficient_quota_differs_from_rate_limits(sim: Any) -> None:
    httpx.post(f"{sim.url}/openai/v1/_sim/quota", json={"exhausted": True}).raise_for_status()
    with pytest.raises(openai.RateLimitError) as caught:
        _client(sim).images.generate(model="gpt-image-2", prompt="a bottle")
    assert (_error(caught)["type"], _error(caught)["code"]) == ("insufficient_quota", "insufficient_quota")
    httpx.post(f"{sim.url}/openai/v1/_sim/quota", json={"exhausted": False}).raise_for_status()
    sim.configure(fault_rate=1.0, faults=["429"], retry_after_s=2)
    with pytest.raises(openai.RateLimitError) as caught:
        _client(sim).images.generate(model="gpt-image-2", prompt="a bottle")
    assert _error(caught)["code"] == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "2"


def test_edit_works_on_several_images_with_a_mask(sim: Any) -> None:
    mask = Image.new("RGBA", (640, 480), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 320, 480))  # repaint the left half
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    result = _client(sim).images.edit(
        model="gpt-image-1.5",
        image=[("base.png", _png((640, 480)), "image/png"), ("ref.png", _png((300, 300)), "image/png")],
        mask=("mask.png", buffer.getvalue(), "image/png"),
        prompt="put a bottle on the left",
        input_fidelity="high",
        output_format="png",
    )
    image = _decoded(result.data[0].b64_json if result.data else None).convert("RGB")
    assert image.size == (1536, 1024)  # auto: the standard size nearest the first image's 4:3
    assert image.getpixel((1400, 500)) == (200, 40, 40)  # the opaque half of the mask kept the image
    assert result.usage is not None and result.usage.input_tokens_details.image_tokens > 0
    (call,) = [r for r in sim.requests() if r["path"] == "/openai/v1/images/edits"]
    assert call["headers"]["content-type"].startswith("multipart/form-data")


@pytest.mark.parametrize(
    ("image", "code"),
    [
        (("notes.txt", b"not an image", "text/plain"), "unsupported_file_mimetype"),
        (b"raw bytes: the SDK sends application/octet-stream", "unsupported_file_mimetype"),
        (("fake.png", b"\x89PNG\r\n\x1a\n truncated", "image/png"), "invalid_image_file"),
    ],
)
def test_edit_refuses_what_is_not_an_image(sim: Any, image: Any, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _client(sim).images.edit(model="gpt-image-2", image=image, prompt="make it blue")
    assert _error(caught)["code"] == code


def test_edit_mask_must_match_and_fidelity_follows_the_model(sim: Any) -> None:
    base = ("base.png", _png((512, 512)), "image/png")
    with pytest.raises(openai.BadRequestError) as caught:
        _client(sim).images.edit(
            model="gpt-image-2", image=base, prompt="x",
            mask=("mask.png", _png((256, 256), "RGBA", (0, 0, 0, 0)), "image/png"),
        )  # fmt: skip
    assert _error(caught)["param"] == "mask"
    with pytest.raises(openai.BadRequestError) as caught:
        _client(sim).images.edit(model="gpt-image-2", image=base, prompt="x", input_fidelity="high")
    assert _error(caught)["code"] == "unsupported_parameter"
