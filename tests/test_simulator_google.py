"""simulator/google.py driven by the official `google-genai` SDK (generateContent) and httpx (Imagen :predict,
which the SDK only sends to Vertex AI), over loopback HTTP."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types
from PIL import Image

from simulator import google
from simulator.core import Fault

FAST = {"latency_scale": 0.01, "latency_jitter": 0.0}
PNG_MAGIC, JPEG_MAGIC = b"\x89PNG", b"\xff\xd8"


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    # Faults off first: the account route sits under /google, where the frame injects them.
    simulator.reset(**FAST)
    _account(simulator, billing_enabled=True, daily_quota_exhausted=False)
    yield simulator


def _account(simulator: Any, **settings: Any) -> None:
    httpx.post(f"{simulator.url}/google/_sim/account", json=settings).raise_for_status()


def _client(simulator: Any, key: str = google.SIMULATOR_KEY, **options: Any) -> genai.Client:
    """The SDK pointed at the simulator, with no retries (a retried call is a second paid image)."""
    http_options = types.HttpOptions(
        base_url=f"{simulator.url}/google",
        retry_options=types.HttpRetryOptions(attempts=1),
        timeout=10_000,
        **options,
    )
    return genai.Client(api_key=key, http_options=http_options)


def _generate(simulator: Any, model: str = "gemini-2.5-flash-image", contents: Any = "a blue bottle on sand",
              **image_config: Any) -> types.GenerateContentResponse:  # fmt: skip
    config = types.GenerateContentConfig(
        response_modalities=["IMAGE"],
        image_config=types.ImageConfig(**image_config) if image_config else None,
    )
    client = _client(simulator)  # kept alive: a collected Client closes its HTTP client mid-call
    return client.models.generate_content(model=model, contents=contents, config=config)


def _images(response: types.GenerateContentResponse) -> list[types.Blob]:
    parts = (
        response.candidates[0].content.parts if response.candidates and response.candidates[0].content else []
    )
    return [p.inline_data for p in parts or [] if p.inline_data and not p.thought]


def _size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def _predict(
    simulator: Any, body: dict[str, Any], model: str = "imagen-4.0-generate-001", **kw: Any
) -> httpx.Response:
    headers = {"x-goog-api-key": google.SIMULATOR_KEY, **kw.pop("headers", {})}
    url = f"{simulator.url}/google/v1beta/models/{model}:predict"
    return httpx.post(url, json=body, headers=headers, timeout=10, **kw)


def _api_calls(simulator: Any) -> list[dict[str, Any]]:
    return [r for r in simulator.requests() if "/models/" in r["path"]]


def test_generate_content_answers_an_inline_png_at_the_asked_aspect(sim: Any) -> None:
    response = _generate(sim, aspect_ratio="16:9")
    (image,) = _images(response)
    assert image.mime_type == "image/png" and image.data.startswith(PNG_MAGIC)
    assert _size(image.data) == (1344, 768)
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage.candidates_token_count == 1290 and usage.prompt_token_count > 0
    assert response.model_version == "gemini-2.5-flash-image"
    (call,) = _api_calls(sim)
    # google-genai 3.6.1 calls v1 unless told otherwise, and sends snake_case inside inlineData.
    assert call["path"] == "/google/v1/models/gemini-2.5-flash-image:generateContent"
    assert call["body"]["generationConfig"] == {
        "responseModalities": ["IMAGE"],
        "imageConfig": {"aspectRatio": "16:9"},
    }


def test_gemini_3_pro_gives_text_and_a_jpeg_at_2k_on_v1beta(sim: Any) -> None:
    client = _client(sim, api_version="v1beta")
    response = client.models.generate_content(
        model="gemini-3-pro-image-preview",
        contents="a lighthouse poster",
        config=types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=types.ImageConfig(aspect_ratio="9:16", image_size="2K"),
        ),
    )
    parts = response.candidates[0].content.parts
    assert parts[0].text and parts[1].inline_data
    (image,) = _images(response)
    assert image.mime_type == "image/jpeg" and image.data.startswith(JPEG_MAGIC)
    assert _size(image.data) == (1536, 2752)
    assert parts[1].thought_signature
    assert response.usage_metadata.thoughts_token_count
    assert _api_calls(sim)[0]["path"] == "/google/v1beta/models/gemini-3-pro-image-preview:generateContent"


def test_a_reference_image_is_accepted_and_sets_the_default_aspect(sim: Any) -> None:
    reference = types.Part.from_bytes(data=_png(320, 180), mime_type="image/png")
    response = _generate(sim, contents=["make it night time", reference])
    (image,) = _images(response)
    assert _size(image.data) == (1344, 768)  # 16:9, the reference's shape
    details = {d.modality: d.token_count for d in response.usage_metadata.prompt_tokens_details}
    assert details[types.MediaModality.IMAGE] == 258


def test_input_that_is_not_an_image_is_refused_with_400(sim: Any) -> None:
    not_an_image = types.Part.from_bytes(data=b"%PDF-1.4 not an image", mime_type="image/png")
    with pytest.raises(errors.ClientError) as caught:
        _generate(sim, contents=["edit this", not_an_image])
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert "Unable to process input image" in caught.value.message
    # Broken base64 and an unsupported MIME type, sent raw.
    url = f"{sim.url}/google/v1beta/models/gemini-2.5-flash-image:generateContent"
    headers = {"x-goog-api-key": google.SIMULATOR_KEY}
    for blob, expected in (
        ({"mimeType": "image/png", "data": "%%%not base64%%%"}, "Base64 decoding failed"),
        (
            {"mimeType": "application/pdf", "data": base64.b64encode(b"%PDF").decode()},
            "Unsupported MIME type",
        ),
    ):
        body = {"contents": [{"parts": [{"text": "edit"}, {"inlineData": blob}]}]}
        answer = httpx.post(url, json=body, headers=headers, timeout=10)
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT" and expected in error["message"]


def test_auth_is_refused_in_googles_shape(sim: Any) -> None:
    client = _client(sim, key="not-a-google-key")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.5-flash-image", contents="x")
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    missing = _predict(sim, {"instances": [{"prompt": "x"}]}, headers={"x-goog-api-key": ""})
    assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"
    by_query = httpx.post(
        f"{sim.url}/google/v1beta/models/imagen-4.0-fast-generate-001:predict",
        params={"key": google.SIMULATOR_KEY},
        json={"instances": [{"prompt": "x"}], "parameters": {"sampleCount": 1}},
        timeout=10,
    )
    assert by_query.status_code == 200


@pytest.mark.parametrize(
    ("model", "image_config", "status", "expected"),
    [
        ("gemini-2.5-flash-image", {"aspect_ratio": "7:3"}, 400, "Unsupported aspect ratio"),
        ("gemini-2.5-flash-image", {"image_size": "4K"}, 400, "Unsupported image size"),
        (
            "gemini-3-pro-image-preview",
            {"image_size": "2k"},
            400,
            "Unsupported image size",
        ),  # only upper-case K
        ("gemini-2.5-flash-image-preview", {}, 404, "is not found for API version v1"),  # retired
    ],
)
def test_validation_refusals(
    sim: Any, model: str, image_config: dict[str, str], status: int, expected: str
) -> None:
    with pytest.raises(errors.ClientError) as caught:
        _generate(sim, model=model, **image_config)
    assert caught.value.code == status
    assert caught.value.status == google.STATUS[status]
    assert expected in caught.value.message


def test_unknown_fields_are_refused_as_protobuf_does(sim: Any) -> None:
    body = {"contents": [{"parts": [{"text": "x"}]}],
            "generationConfig": {"imageConfig": {"aspectRatio": "1:1", "outputMimeType": "image/jpeg"}}}  # fmt: skip
    answer = httpx.post(
        f"{sim.url}/google/v1beta/models/gemini-2.5-flash-image:generateContent",
        json=body,
        headers={"x-goog-api-key": google.SIMULATOR_KEY},
        timeout=10,
    )
    assert answer.status_code == 400
    assert (
        "Unknown name \"outputMimeType\" at 'generation_config.image_config'"
        in answer.json()["error"]["message"]
    )


def test_input_moderation_is_a_prompt_feedback_block_with_no_candidates(sim: Any) -> None:
    sim.configure(fault_rate=1.0, faults=[Fault.moderation])
    response = _generate(sim)
    assert not response.candidates
    assert response.prompt_feedback.block_reason in (
        types.BlockedReason.SAFETY, types.BlockedReason.PROHIBITED_CONTENT, types.BlockedReason.OTHER
    )  # fmt: skip


def test_output_moderation_is_an_image_safety_finish_with_no_image(sim: Any) -> None:
    sim.configure(fault_rate=1.0, faults=[Fault.moderation_output])
    response = _generate(sim)
    assert response.candidates[0].finish_reason in (
        types.FinishReason.IMAGE_SAFETY, types.FinishReason.IMAGE_PROHIBITED_CONTENT
    )  # fmt: skip
    assert _images(response) == []


def test_a_failed_generation_is_500_internal_and_not_retried(sim: Any) -> None:
    sim.configure(fault_rate=1.0, faults=[Fault.failed])
    with pytest.raises(errors.ServerError) as caught:
        _generate(sim)
    assert (caught.value.code, caught.value.status) == (500, "INTERNAL")
    assert len(_api_calls(sim)) == 1


def test_rate_limit_is_429_resource_exhausted_with_retry_info(sim: Any) -> None:
    sim.configure(fault_rate=1.0, faults=[Fault.rate_limited], retry_after_s=7)
    with pytest.raises(errors.ClientError) as caught:
        _generate(sim)
    assert (caught.value.code, caught.value.status) == (429, "RESOURCE_EXHAUSTED")
    kinds = {d["@type"].rsplit(".", 1)[1]: d for d in caught.value.details["error"]["details"]}
    assert kinds["RetryInfo"]["retryDelay"] == "7s" and "QuotaFailure" in kinds
    assert len(_api_calls(sim)) == 1


def test_expired_changes_nothing_because_images_come_inline(sim: Any) -> None:
    sim.configure(fault_rate=1.0, faults=[Fault.expired])
    assert len(_images(_generate(sim))) == 1


def test_imagen_predict_returns_real_images(sim: Any) -> None:
    body = {"instances": [{"prompt": "a red kite"}],
            "parameters": {"sampleCount": 2, "aspectRatio": "16:9", "outputOptions": {"mimeType": "image/jpeg"},
                           "personGeneration": "ALLOW_ADULT", "includeSafetyAttributes": True}}  # fmt: skip
    answer = _predict(sim, body)
    assert answer.status_code == 200
    predictions = answer.json()["predictions"]
    images = [p for p in predictions if "bytesBase64Encoded" in p]
    assert len(images) == 2 and predictions[-1]["contentType"] == "Positive Prompt"
    for prediction in images:
        data = base64.b64decode(prediction["bytesBase64Encoded"])
        assert prediction["mimeType"] == "image/jpeg" and data.startswith(JPEG_MAGIC)
        assert _size(data) == (1408, 768)
    default = _predict(sim, {"instances": [{"prompt": "a red kite"}]}, model="imagen-4.0-fast-generate-001")
    assert len(default.json()["predictions"]) == 4  # sampleCount defaults to 4
    assert _size(base64.b64decode(default.json()["predictions"][0]["bytesBase64Encoded"])) == (1024, 1024)


@pytest.mark.parametrize(
    ("parameters", "model", "expected"),
    [
        ({"sampleCount": 5}, "imagen-4.0-generate-001", "sampleCount"),
        ({"aspectRatio": "3:2"}, "imagen-4.0-generate-001", "aspect ratio"),
        ({"negativePrompt": "blur"}, "imagen-4.0-generate-001", "not supported in Gemini API"),
        ({"sampleImageSize": "2K"}, "imagen-4.0-fast-generate-001", "not supported"),
    ],
)
def test_imagen_validation_refusals(sim: Any, parameters: dict[str, Any], model: str, expected: str) -> None:
    answer = _predict(sim, {"instances": [{"prompt": "x"}], "parameters": parameters}, model=model)
    assert answer.status_code == 400
    assert (
        answer.json()["error"]["status"] == "INVALID_ARGUMENT"
        and expected in answer.json()["error"]["message"]
    )


def test_imagen_is_not_served_on_v1_nor_by_generate_content(sim: Any) -> None:
    client = _client(sim)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="imagen-4.0-generate-001", contents="x")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    url = f"{sim.url}/google/v1/models/imagen-4.0-generate-001:predict"
    answer = httpx.post(
        url, json={"instances": [{"prompt": "x"}]}, headers={"x-goog-api-key": google.SIMULATOR_KEY}
    )
    assert answer.status_code == 404


@pytest.mark.parametrize(
    ("fault", "status", "marker"),
    [
        (Fault.failed, 500, "INTERNAL"),
        (Fault.moderation, 400, "Responsible AI"),
        (Fault.moderation_output, 200, "raiFilteredReason"),
    ],
)
def test_imagen_faults(sim: Any, fault: Fault, status: int, marker: str) -> None:
    sim.configure(fault_rate=1.0, faults=[fault])
    body = {"instances": [{"prompt": "x"}], "parameters": {"sampleCount": 1, "includeRaiReason": True}}
    answer = _predict(sim, body)
    assert answer.status_code == status and marker in answer.text
    if fault is Fault.moderation_output:
        assert not any("bytesBase64Encoded" in p for p in answer.json()["predictions"])
        assert _predict(sim, {"instances": [{"prompt": "x"}], "parameters": {"sampleCount": 1}}).json() == {}


def test_billing_and_daily_quota(sim: Any) -> None:
    _account(sim, billing_enabled=False)
    refused = _predict(sim, {"instances": [{"prompt": "x"}]})
    assert (
        refused.status_code == 400 and "only accessible to billed users" in refused.json()["error"]["message"]
    )
    with pytest.raises(errors.ClientError) as caught:
        _generate(sim)
    assert caught.value.code == 429 and "limit: 0" in caught.value.message
    _account(sim, billing_enabled=True, daily_quota_exhausted=True)
    with pytest.raises(errors.ClientError) as caught:
        _generate(sim)
    violations = caught.value.details["error"]["details"][1]["violations"]
    assert caught.value.code == 429 and "PerDay" in violations[0]["quotaId"]
