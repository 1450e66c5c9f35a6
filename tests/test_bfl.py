"""The BFL adapter (plain httpx) against simulator/bfl.py over loopback: what the contract suite does not see —
the bodies BFL receives, sizes per model family, options, references, polling URLs and BFL's own error answers."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cutroom.assets import AssetSpec, InputRef, Operation
from cutroom.channels import SIZES, Aspect
from cutroom.loopback import free_port
from providers import callbacks
from providers.bfl import FLUX1, FLUX2, BflImage, _expired, fit_pixels, webhook_news
from providers.callbacks import CallbackNews
from providers.errors import ErrorKind, JobFailed, ProviderError
from providers.polling import run_job, wait_for
from providers.protocol import JobRef
from simulator.bfl import SIMULATOR_KEY
from tests.vendor_helpers import image_ref, image_spec, not_an_image, on_simulator, refused

SCALE = 0.01


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    # Faults off first: the control routes sit under /bfl, where the frame injects them.
    simulator.reset(latency_scale=SCALE, latency_jitter=0.0)
    _control(simulator, "credits", credits=100_000)
    _control(simulator, "limits", concurrency=24, kontext_max_concurrency=6)
    yield simulator


def _control(simulator: Any, what: str, **values: Any) -> None:
    httpx.post(f"{simulator.url}/bfl/_sim/{what}", json=values).raise_for_status()


def _adapter(sim: Any, model: str | None = None, base: str = "", **options: Any) -> BflImage:
    return on_simulator(
        BflImage, sim, model, scale=SCALE, timeout=5.0, base_url=f"{sim.url}/bfl{base}", **options
    )


def _spec(model: str = "flux-2-pro", aspect: Aspect = Aspect.landscape, **changes: Any) -> AssetSpec:
    return image_spec("bfl", model, "a blue bottle on sand", aspect, **changes)


def _submits(sim: Any) -> list[dict[str, Any]]:
    return [
        r for r in sim.requests() if r["vendor"] == "bfl" and r["method"] == "POST" and "/v1/" in r["path"]
    ]


# -- sizes ---------------------------------------------------------------------------------------------------------

PIXELS = {  # what each pixel family sends for our three sizes: its grid, nearest in aspect then area
    ("flux-2-pro", Aspect.landscape): (1280, 720),
    ("flux-2-pro", Aspect.square): (1072, 1072),
    ("flux-2-pro", Aspect.vertical): (720, 1280),
    ("flux-pro-1.1", Aspect.landscape): (1248, 704),
    ("flux-pro-1.1", Aspect.square): (1088, 1088),
    ("flux-pro-1.1", Aspect.vertical): (704, 1248),
}


@pytest.mark.parametrize(("model", "aspect"), list(PIXELS), ids=lambda v: getattr(v, "value", v))
def test_pixel_models_get_the_nearest_width_and_height_on_their_grid(sim, model: str, aspect: Aspect) -> None:
    made = run_job(_adapter(sim, model), _spec(model, aspect))
    body = _submits(sim)[0]["body"]
    assert (body["width"], body["height"]) == (made.width, made.height) == PIXELS[model, aspect]
    assert "aspect_ratio" not in body and body["seed"] == 7 and body["prompt"] == "a blue bottle on sand"
    asked = SIZES[aspect][0] / SIZES[aspect][1]
    assert made.width / made.height == pytest.approx(asked, rel=0.01)


@pytest.mark.parametrize("model", ["flux-pro-1.1-ultra", "flux-kontext-pro"])
@pytest.mark.parametrize("aspect", list(Aspect), ids=lambda a: a.value)
def test_ratio_models_get_the_aspect_ratio(sim, model: str, aspect: Aspect) -> None:
    made = run_job(_adapter(sim, model), _spec(model, aspect))
    body = _submits(sim)[0]["body"]
    assert body["aspect_ratio"] == aspect.value and "width" not in body
    asked = SIZES[aspect][0] / SIZES[aspect][1]
    assert made.width / made.height == pytest.approx(asked, rel=0.08)


def test_sizes_beyond_a_family_s_bounds_are_scaled_onto_its_grid() -> None:
    assert fit_pixels(3840, 2160, FLUX1) == (1376, 768)  # within 1440, 16:9 to 0.8 %
    width, height = fit_pixels(4096, 4096, FLUX2)
    assert width == height and width * height <= 4 * 1024 * 1024 and width % 16 == 0
    assert fit_pixels(100, 100, FLUX1) == (256, 256)


# -- options, references -------------------------------------------------------------------------------------------


def test_options_reach_bfl_by_their_own_names(sim) -> None:
    options = {
        "steps": 12,
        "guidance": 4.0,
        "safety_tolerance": 4,
        "output_format": "png",
        "prompt_upsampling": True,
    }
    made = run_job(_adapter(sim, "flux-dev"), _spec("flux-dev", options=options))
    assert _submits(sim)[0]["path"] == "/bfl/v1/flux-dev"
    assert options.items() <= _submits(sim)[0]["body"].items()
    assert made.mime == "image/png"


def test_ultra_takes_raw_and_the_image_prompt_strength(sim, tmp_path: Path) -> None:
    reference = image_ref(tmp_path / "ref.png")
    spec = _spec(
        "flux-pro-1.1-ultra", options={"raw": True, "image_prompt_strength": 0.6}, inputs=(reference,)
    )
    run_job(_adapter(sim, "flux-pro-1.1-ultra"), spec)
    body = _submits(sim)[0]["body"]
    assert body["raw"] is True and body["image_prompt_strength"] == 0.6
    assert (
        base64.b64decode(body["image_prompt"]) == (tmp_path / "ref.png").read_bytes()
    )  # raw base64, no data:


def test_a_kontext_edit_sends_its_source_as_input_image(sim, tmp_path: Path) -> None:
    source = image_ref(tmp_path / "source.png", size=(320, 180)).model_copy(update={"role": "source"})
    run_job(
        _adapter(sim, "flux-kontext-pro"),
        _spec("flux-kontext-pro", operation=Operation.modify, inputs=(source,)),
    )
    body = _submits(sim)[0]["body"]
    assert Image.open(io.BytesIO(base64.b64decode(body["input_image"]))).size == (320, 180)


def test_references_with_a_link_go_as_the_link(sim, tmp_path: Path) -> None:
    local = image_ref(tmp_path / "character.png").model_copy(update={"role": "character_reference"})
    linked = InputRef(role="style_reference", uri="https://cdn.example.com/style.png", sha256="y")
    run_job(_adapter(sim, "flux-kontext-max"), _spec("flux-kontext-max", inputs=(local, linked)))
    body = _submits(sim)[0]["body"]
    assert base64.b64decode(body["input_image"]) == (tmp_path / "character.png").read_bytes()
    assert body["input_image_2"] == "https://cdn.example.com/style.png"


def test_flux_2_takes_up_to_eight_references_and_refuses_a_ninth_before_any_request(
    sim, tmp_path: Path
) -> None:
    refs = tuple(image_ref(tmp_path / f"r{n}.png") for n in range(9))
    refused(lambda: _adapter(sim).submit(_spec(inputs=refs)), ErrorKind.invalid_input)
    assert _submits(sim) == []
    run_job(_adapter(sim), _spec(inputs=refs[:8]))
    assert {f"input_image_{n}" for n in range(2, 9)} <= set(_submits(sim)[0]["body"])


def test_a_reference_that_is_not_an_image_is_refused_before_any_request(sim, tmp_path: Path) -> None:
    ref = not_an_image(tmp_path / "brief.png")
    error = refused(lambda: _adapter(sim).submit(_spec(inputs=(ref,))), ErrorKind.invalid_input)
    assert "not image media" in str(error)
    assert [r for r in sim.requests() if "/v1/" in r["path"]] == []


@pytest.mark.parametrize(
    ("model", "options", "inputs"),
    [
        ("flux-dev", {"guidance": 8.0}, 0),  # FLUX.1 guidance stops at 5
        ("flux-2-pro", {"safety_tolerance": 6}, 0),  # FLUX.2 tolerance stops at 5
        ("flux-kontext-max", {"safety_tolerance": 4}, 1),  # Kontext editing an image: at most 2
        ("flux-pro-1.1", {}, 2),  # one image prompt
    ],
)
def test_the_adapter_refuses_what_a_model_s_own_ranges_refuse(sim, tmp_path, model, options, inputs) -> None:
    refs = tuple(image_ref(tmp_path / f"r{n}.png") for n in range(inputs))
    spec = _spec(model, options=options, inputs=refs)
    refused(lambda: _adapter(sim, model).submit(spec), ErrorKind.invalid_input)
    assert _submits(sim) == []


# -- polling and outputs -------------------------------------------------------------------------------------------


def test_polls_go_to_the_cluster_s_polling_url_with_the_key_and_samples_without_it(sim) -> None:
    made = run_job(_adapter(sim), _spec())
    calls = [r for r in sim.requests() if r["vendor"] == "bfl"]
    polls = [r for r in calls if "get_result" in r["path"]]
    samples = [r for r in calls if "/delivery-" in r["path"]]
    assert polls and all(p["path"].startswith(("/bfl/eu1/v1/", "/bfl/us1/v1/")) for p in polls)
    assert all(r["headers"].get("x-key") == "…" for r in [*_submits(sim), *polls])
    assert len(samples) == 1 and "x-key" not in samples[0]["headers"]
    assert made.cost_usd == pytest.approx(0.03)  # the submit answer's cost: 3 credits


def test_the_cost_is_bfl_s_and_the_estimate_adds_flux_2_megapixels(sim) -> None:
    adapter, spec = _adapter(sim), _spec(aspect=Aspect.square)  # 1072x1072: 1.1 MP
    made = run_job(adapter, spec)
    assert made.cost_usd == pytest.approx(0.0315)  # 3 credits + 1.5 for the 0.1 MP past the first
    assert adapter.estimate(spec) == pytest.approx(0.0314, abs=1e-4)
    assert adapter.estimate(_spec("flux-pro-1.1")) == pytest.approx(0.04)


def test_a_job_re_attached_by_a_new_process_is_polled_under_its_base(sim) -> None:
    submitted = _adapter(sim, base="/eu1").submit(_spec())
    made = wait_for(_adapter(sim, base="/eu1"), submitted)  # no polling_url: /v1/get_result?id= on eu1
    assert made.data and made.cost_usd == pytest.approx(0.03)  # the card's price: the cost stayed behind
    assert any(r["path"] == f"/bfl/eu1/v1/get_result?id={submitted.job_id}" for r in sim.requests())


def test_a_re_attached_job_is_polled_at_its_journaled_polling_url(sim) -> None:
    submitted = _adapter(sim, base="/eu").submit(_spec())  # the EU base hands it to cluster eu1
    assert submitted.handle["polling_url"].startswith(f"{sim.url}/bfl/eu1/")
    assert wait_for(_adapter(sim, base="/eu"), submitted).data  # a new process, the handle from the ledger


def test_a_re_attached_job_its_base_does_not_own_is_not_found_and_says_why(sim) -> None:
    submitted = _adapter(sim, base="/eu").submit(_spec()).model_copy(update={"handle": {}})
    with pytest.raises(JobFailed) as caught:
        wait_for(_adapter(sim, base="/eu"), submitted)
    assert caught.value.kind is ErrorKind.not_found and "cluster that took it" in str(caught.value)


def test_a_base_url_written_with_v1_works(sim) -> None:
    assert run_job(_adapter(sim, base="/v1"), _spec()).data
    assert _submits(sim)[0]["path"] == "/bfl/v1/flux-2-pro"


def test_moderation_says_bfl_s_reasons(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation"])
    with pytest.raises(JobFailed) as caught:
        run_job(_adapter(sim), _spec())
    assert caught.value.kind is ErrorKind.moderation_input and "Request Moderated: Sexual Content" in str(
        caught.value
    )


def test_a_polling_url_off_bfl_never_gets_the_key() -> None:
    adapter = BflImage(base_url="https://api.bfl.ai", api_key=SIMULATOR_KEY)
    assert adapter._ours("https://api.eu2.bfl.ai/v1/get_result?id=x")
    assert not adapter._ours("http://api.eu2.bfl.ai/v1/get_result?id=x")  # the key never goes in clear
    assert not adapter._ours("https://bfl.ai.example.com/v1/get_result?id=x")


def test_a_sample_link_past_its_signed_expiry_is_seen_as_expired() -> None:
    def at(moment: datetime) -> str:
        return f"https://delivery-eu1.bfl.ai/x.jpeg?se={moment.strftime('%Y-%m-%dT%H:%M:%SZ')}&sp=r&sig=abc"

    assert _expired(at(datetime.now(UTC) - timedelta(seconds=1)))
    assert not _expired(at(datetime.now(UTC) + timedelta(minutes=10)))
    assert not _expired("https://delivery-eu1.bfl.ai/x.jpeg")


# -- webhooks -----------------------------------------------------------------------------------------------------

WEBHOOK_SCALE = 0.25  # flux-2-pro's 8 s becomes 2 s: its safety-net look would come ~50 % after the end


def test_with_a_callback_url_the_task_is_seen_in_one_poll_when_bfl_posts_that_it_ended(
    sim, monkeypatch
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/cutroom/callbacks"
    monkeypatch.setenv(callbacks.LISTEN_ENV, f"127.0.0.1:{port}")
    sim.configure(latency_scale=WEBHOOK_SCALE)
    adapter = on_simulator(BflImage, sim, scale=WEBHOOK_SCALE, timeout=5.0, callback_url=url)

    made = run_job(adapter, _spec())

    assert made.data and _submits(sim)[0]["body"]["webhook_url"] == url
    polls = [r["time"] for r in sim.requests() if "get_result" in r["path"]]
    timing = next(j for j in sim.jobs() if j["vendor"] == "bfl")
    assert len(polls) == 1  # woken by the post, not by the schedule
    assert polls[0] - timing["finished"] <= 0.25 * (timing["finished"] - timing["created"])


def test_webhook_bodies_are_read_for_their_task_and_end_only() -> None:
    task = "0f8e3c1a-2b4d-4e6f-8a9b-0c1d2e3f4a5b"
    ready = {"id": task, "status": "Ready", "result": {"sample": "https://delivery-eu1.bfl.ai/x"}}
    assert webhook_news(ready) == CallbackNews(job_id=task, ended=True)
    assert webhook_news({"id": task, "status": "Content Moderated"}) == CallbackNews(job_id=task, ended=True)
    assert webhook_news({"id": task, "status": "Pending", "progress": 0.4}) is None  # BFL posts only the end
    assert webhook_news({"id": task, "state": "completed"}) is None  # another vendor's post
    assert webhook_news({"id": task, "status": "succeeded", "template_id": "t"}) is None  # Creatomate's


# -- BFL's error answers -------------------------------------------------------------------------------------------


def test_a_malformed_key_and_an_unknown_key_are_auth_and_never_quoted(sim) -> None:
    malformed = refused(lambda: _adapter(sim, api_key="sk-not-a-uuid").submit(_spec()), ErrorKind.auth)
    assert "Invalid API key format" in str(malformed) and "sk-not-a-uuid" not in str(malformed)
    not_v4 = "5c0e7f3a-2b9d-1e61-a8f4-93d1b6c2e7a0"
    unknown = refused(lambda: _adapter(sim, api_key=not_v4).submit(_spec()), ErrorKind.auth)
    assert "Not authenticated" in str(unknown) and not_v4 not in str(unknown)


def test_an_empty_account_is_insufficient_credits(sim) -> None:
    _control(sim, "credits", credits=1)
    refused(lambda: _adapter(sim).submit(_spec()), ErrorKind.insufficient_credits)
    assert _adapter(sim).credits() == pytest.approx(0.01)


def test_the_in_flight_cap_is_rate_limited_with_its_retry_after(sim) -> None:
    sim.configure(latency_scale=0.5)  # jobs long enough to still be in flight
    _control(sim, "limits", concurrency=1)
    adapter = _adapter(sim)
    adapter.submit(_spec())
    limited = refused(lambda: adapter.submit(_spec(seed=8)), ErrorKind.rate_limited)
    assert limited.retry_after is not None and limited.retry_after >= 1  # whole seconds until a task ends
    assert "maximum of 1 active tasks" in str(limited)


def test_a_field_bfl_refuses_is_invalid_input_naming_the_field(sim) -> None:
    adapter, spec = _adapter(sim, "flux-dev"), _spec("flux-dev", options={"guidance": 8.0})
    card = adapter.vendor.card("flux-dev")
    with pytest.raises(ProviderError) as caught, adapter.calling("create"):
        adapter.create(spec, card)  # the card's check left out: BFL's own 422
    assert (
        caught.value.kind is ErrorKind.invalid_input
        and "guidance: Input should be less than or equal to 5" in str(caught.value)
    )


def test_an_unknown_task_is_not_found(sim) -> None:
    job = JobRef(provider="bfl", job_id="0b7f3f0e-6a55-4c1e-9a63-2f1f4c1d2e3a", spec_key="0")
    status = _adapter(sim, base="/us1").poll(job)
    assert status.error_kind is ErrorKind.not_found and "Task not found" in (status.error or "")
