"""The Leonardo.ai simulator's wire contract, driven with plain httpx (Leonardo has no official Python SDK)."""

from __future__ import annotations

import io
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from PIL import Image

from simulator import leonardo

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.simulator_fixture import SimulatorHandle

PHOENIX = "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3"
FLUX_SCHNELL = "1dd50843-d653-4516-a8e3-f0238ee453ff"


@pytest.fixture
def sim(simulator: SimulatorHandle) -> SimulatorHandle:
    simulator.reset(latency_scale=0.01)
    httpx.post(f"{simulator.url}/leonardo/_sim/limits", json={"concurrency": 10, "api_tokens": 100_000})
    return simulator


@pytest.fixture
def api(sim: SimulatorHandle) -> Iterator[httpx.Client]:
    base = f"{sim.url}{leonardo.PREFIX}{leonardo.API}"
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {leonardo.SIMULATOR_KEY}"}) as client:
        yield client


def _body(**changes: Any) -> dict[str, Any]:
    body = {"prompt": "a lighthouse at dusk", "modelId": PHOENIX, "contrast": 3.5, "width": 1024, "height": 576,
            "num_images": 1}  # fmt: skip
    return {**body, **changes}


def _finish(api: httpx.Client, generation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        generation = api.get(f"/generations/{generation_id}").json()["generations_by_pk"]
        if generation["status"] != "PENDING":
            return generation
        time.sleep(0.02)
    raise AssertionError("the generation never finished")


def _create(api: httpx.Client, **changes: Any) -> str:
    response = api.post("/generations", json=_body(**changes))
    assert response.status_code == 200, response.text
    return response.json()["sdGenerationJob"]["generationId"]


def test_a_generation_runs_pending_to_complete_with_real_images_of_the_asked_size(api: httpx.Client) -> None:
    tokens = api.get("/me").json()["user_details"][0]["apiPaidTokens"]
    response = api.post("/generations", json=_body(num_images=2))
    job = response.json()["sdGenerationJob"]
    tokens_spent = job["apiCreditCost"]
    assert tokens_spent > 0 and job["cost"] == {"amount": str(tokens_spent), "unit": "CREDITS"}
    first = api.get(f"/generations/{job['generationId']}").json()["generations_by_pk"]
    assert first["status"] == "PENDING" and first["generated_images"] == []
    generation = _finish(api, job["generationId"])
    assert generation["status"] == "COMPLETE"
    assert (generation["imageWidth"], generation["imageHeight"]) == (1024, 576)
    assert generation["modelId"] == PHOENIX
    assert len(generation["generated_images"]) == 2
    for image in generation["generated_images"]:
        assert image["nsfw"] is False and image["url"].endswith(".jpg")
        download = httpx.get(image["url"])  # a public CDN link: no auth
        assert download.headers["content-type"] == "image/jpeg"
        picture = Image.open(io.BytesIO(download.content))
        assert (picture.format, picture.size) == ("JPEG", (1024, 576))
    assert api.get("/me").json()["user_details"][0]["apiPaidTokens"] == tokens - tokens_spent


def test_a_transparent_generation_is_a_png(api: httpx.Client) -> None:
    generation = _finish(api, _create(api, modelId=FLUX_SCHNELL, transparency="foreground_only", width=512,
                                      height=768))  # fmt: skip
    download = httpx.get(generation["generated_images"][0]["url"])
    assert Image.open(io.BytesIO(download.content)).format == "PNG"
    assert Image.open(io.BytesIO(download.content)).size == (512, 768)


def test_auth_is_refused_in_hasuras_shape(sim: SimulatorHandle) -> None:
    url = f"{sim.url}/leonardo/api/rest/v1/generations"
    missing = httpx.post(url, json=_body())
    assert missing.status_code == 401
    assert missing.json() == {"error": "Authentication hook unauthorized this request", "path": "$",
                              "code": "access-denied"}  # fmt: skip
    malformed = httpx.post(url, json=_body(), headers={"authorization": "Bearer not-a-uuid"})
    assert malformed.status_code == 500
    assert malformed.json() == {"error": "Invalid response from authorization hook", "path": "$",
                                "code": "unexpected"}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "code", "needle"),
    [
        ({"prompt": None}, "validation-failed", 'non-nullable variable: "prompt"'),
        ({"alchemy": "true"}, "validation-failed", "expected a boolean for type 'Boolean', but found a string"),
        ({"presetStyle": "WATERCOLOR"}, "validation-failed", "for type 'sd_generation_style'"),
        ({"aspect_ratio": "16:9"}, "validation-failed", "unexpected variables in variableValues: aspect_ratio"),
        ({"width": 1001}, "unexpected", "multiple of 8"),
        ({"width": 1600}, "unexpected", "between 32 and 1536"),
        ({"num_images": 5}, "unexpected", "num_images must be between 1 and 4"),
        ({"contrast": None}, "unexpected", "contrast is required"),
        ({"contrast": 2, "alchemy": True}, "unexpected", "contrast must be one of"),
        ({"contrast": 1.8, "alchemy": True}, "unexpected", "2.5 or higher"),
        ({"modelId": "00000000-0000-4000-8000-000000000000"}, "unexpected", "not found"),
        ({"modelId": "phoenix"}, "data-exception", "invalid input syntax for type uuid"),
    ],
)  # fmt: skip
def test_validation_refusals(api: httpx.Client, changes: dict[str, Any], code: str, needle: str) -> None:
    body = {k: v for k, v in _body(**changes).items() if v is not None}
    response = api.post("/generations", json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == code and needle in error["error"], error


def test_a_failed_job_ends_failed_without_images(sim: SimulatorHandle, api: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["failed"])
    generation = _finish(api, _create(api))
    assert generation["status"] == "FAILED" and generation["generated_images"] == []


def test_a_moderated_prompt_is_refused_at_once(sim: SimulatorHandle, api: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation"])
    response = api.post("/generations", json=_body(prompt="naked truth"))
    assert response.status_code == 400
    assert response.json() == {"error": "content moderation filter: naked", "path": "$", "code": "unexpected"}
    assert sim.jobs() == []


def test_a_moderated_output_is_complete_but_flagged_nsfw(sim: SimulatorHandle, api: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    generation = _finish(api, _create(api, num_images=2))
    assert generation["status"] == "COMPLETE"
    assert [image["nsfw"] for image in generation["generated_images"]] == [True, True]


def test_an_expired_image_link_is_gone(sim: SimulatorHandle, api: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, faults=["expired"])
    generation = _finish(api, _create(api))
    download = httpx.get(generation["generated_images"][0]["url"])
    assert download.status_code == 403 and b"AccessDenied" in download.content


def _upload(api: httpx.Client, data: bytes, extension: str = "png") -> tuple[str, httpx.Response]:
    presigned = api.post("/init-image", json={"extension": extension}).json()["uploadInitImage"]
    fields = json.loads(presigned["fields"])
    assert fields["key"] == presigned["key"]
    upload = httpx.post(presigned["url"], data=fields, files={"file": ("init." + extension, data)})
    return presigned["id"], upload


def test_an_uploaded_init_image_guides_a_generation(api: httpx.Client) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(picture, format="PNG")
    init_id, upload = _upload(api, picture.getvalue())
    assert upload.status_code == 204
    generation = _finish(api, _create(api, init_image_id=init_id, init_strength=0.5))
    assert generation["status"] == "COMPLETE" and generation["initStrength"] == 0.5


def test_a_non_image_upload_is_taken_by_s3_and_refused_by_the_generation(api: httpx.Client) -> None:
    init_id, upload = _upload(api, b"%PDF-1.4 not an image")
    assert upload.status_code == 204  # S3 never looks inside
    response = api.post("/generations", json=_body(init_image_id=init_id))
    assert response.status_code == 400
    assert "not a valid png image" in response.json()["error"]
    never_uploaded = api.post("/init-image", json={"extension": "jpg"}).json()["uploadInitImage"]["id"]
    unready = api.post("/generations", json=_body(init_image_id=never_uploaded))
    assert unready.status_code == 400 and "not uploaded" in unready.json()["error"]


def test_init_image_extension_and_upload_policy(api: httpx.Client) -> None:
    bad = api.post("/init-image", json={"extension": "gif"})
    assert bad.status_code == 400 and bad.json() == {"error": "invalid file extension", "path": "$",
                                                     "code": "unexpected"}  # fmt: skip
    presigned = api.post("/init-image", json={"extension": "png"}).json()["uploadInitImage"]
    fields = {**json.loads(presigned["fields"]), "Content-Type": "text/plain"}
    refused = httpx.post(presigned["url"], data=fields, files={"file": ("x.png", b"x")})
    assert refused.status_code == 403 and b"Policy Condition failed" in refused.content


def test_the_concurrency_limit_and_the_token_balance(sim: SimulatorHandle, api: httpx.Client) -> None:
    sim.configure(latency_scale=1.0)  # jobs stay PENDING for the test's length
    httpx.post(f"{sim.url}/leonardo/_sim/limits", json={"concurrency": 1})
    _create(api)
    over = api.post("/generations", json=_body())
    assert over.status_code == 429 and over.json()["code"] == "unexpected"
    httpx.post(f"{sim.url}/leonardo/_sim/limits", json={"concurrency": 10, "api_tokens": 3})
    poor = api.post("/generations", json=_body())
    assert poor.status_code == 400 and "Not enough API tokens" in poor.json()["error"]
    assert api.get("/me").json()["user_details"][0]["apiConcurrencySlots"] == 10


def test_lookups_by_primary_key_and_delete(api: httpx.Client) -> None:
    generation_id = _create(api)
    missing = api.get("/generations/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 200 and missing.json() == {"generations_by_pk": None}
    malformed = api.get("/generations/abc")
    assert malformed.status_code == 400 and malformed.json()["code"] == "data-exception"
    deleted = api.delete(f"/generations/{generation_id}").json()
    assert deleted == {"delete_generations_by_pk": {"id": generation_id}}
    assert api.get(f"/generations/{generation_id}").json() == {"generations_by_pk": None}
