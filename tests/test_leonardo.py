"""The Leonardo.ai adapter (plain httpx) against simulator/leonardo.py over loopback: what the contract suite does
not see — the createGeneration body Leonardo receives, sizes per aspect and model, options, the init-image upload
flow, and Leonardo's own answers (a 500 for a bad key, 200 null for a missing generation, nsfw flags, tokens)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cutroom.assets import AssetSpec, InputRef
from cutroom.capabilities import Capability
from cutroom.channels import SIZES, Aspect
from providers import declarations
from providers.cards import ModelCard
from providers.errors import ErrorKind, JobFailed
from providers.leonardo import LeonardoImage, _dollars, fit_size, model_of
from providers.polling import run_job
from providers.protocol import JobRef
from simulator import leonardo as simulated
from tests.vendor_helpers import image_ref, image_spec, not_an_image, on_simulator, refused

SCALE = 0.01
LEONARDO = declarations.vendor("leonardo")
KEY = LEONARDO.simulator.key  # type: ignore[union-attr]


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    simulator.reset(latency_scale=SCALE, latency_jitter=0.0)  # also restores the account's limits
    yield simulator


def _adapter(sim: Any, model: str | None = None, **options: Any) -> LeonardoImage:
    return on_simulator(LeonardoImage, sim, model, scale=SCALE, timeout=5.0, **options)


def _spec(model: str = "phoenix-1.0", aspect: Aspect = Aspect.landscape, **changes: Any) -> AssetSpec:
    return image_spec("leonardo", model, "a blue bottle on sand", aspect, **changes)


def _calls(sim: Any, path: str = "/generations", method: str = "POST") -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["vendor"] == "leonardo" and r["method"] == method
            and r["path"].endswith(path)]  # fmt: skip


def _limits(sim: Any, **values: Any) -> None:
    httpx.post(f"{sim.url}/leonardo/_sim/limits", json=values).raise_for_status()


# -- the request ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("aspect", list(Aspect), ids=lambda a: a.value)
def test_each_aspect_is_sent_at_its_exact_size_as_one_image(sim, aspect: Aspect) -> None:
    spec = _spec(aspect=aspect)
    made = run_job(_adapter(sim), spec)
    body = _calls(sim)[0]["body"]
    assert (body["width"], body["height"]) == (made.width, made.height) == SIZES[aspect]
    assert body == {
        "prompt": "a blue bottle on sand",
        "modelId": LEONARDO.card("phoenix-1.0").vendor_id,
        "width": SIZES[aspect][0],
        "height": SIZES[aspect][1],
        "num_images": 1,  # Leonardo's default is four paid images
        "seed": 7,
        "contrast": 3.5,  # required by Phoenix: the card's default
        "alchemy": False,  # fast mode unless asked: the price the card states
    }
    # Leonardo reported credits, which have no fixed dollar value: the card's price is booked.
    assert made.cost_usd == pytest.approx(_adapter(sim).estimate(spec)) and made.cost_usd > 0


def test_sizes_are_fitted_on_the_8_pixel_grid_within_each_model_s_longest_side() -> None:
    assert fit_size(1920, 1080, 1536) == (1536, 864)
    assert fit_size(1920, 1080, 2048) == (1920, 1080)  # Lucid
    assert fit_size(1001, 1001, 1536) == (1000, 1000)
    assert fit_size(20, 40, 1536) == (32, 64)


def test_a_big_spec_on_lucid_keeps_its_size_and_on_phoenix_is_scaled(sim) -> None:
    run_job(_adapter(sim, "lucid-origin"), _spec("lucid-origin", width=1920, height=1080))
    run_job(_adapter(sim), _spec(width=1920, height=1080))
    sizes = [(c["body"]["width"], c["body"]["height"]) for c in _calls(sim)]
    assert sizes == [(1920, 1080), (1536, 864)]


def test_options_reach_leonardo_by_its_own_names(sim) -> None:
    options = {"alchemy": True, "contrast": 4.0, "presetStyle": "CINEMATIC", "negative_prompt": "text, blur"}
    spec = _spec(options=options)
    made = run_job(_adapter(sim), spec)
    assert options.items() <= _calls(sim)[0]["body"].items()
    # Quality mode doubles the estimate (and the credits Leonardo charges).
    assert made.cost_usd == pytest.approx(2 * _adapter(sim).estimate(_spec()), rel=0.01)


def test_ultra_and_flux_seeds(sim) -> None:
    run_job(_adapter(sim, "lucid-realism"), _spec("lucid-realism", options={"ultra": True}))
    run_job(_adapter(sim, "flux-schnell"), _spec("flux-schnell", seed=3_000_000_000))
    lucid, flux = (c["body"] for c in _calls(sim))
    assert (
        lucid["ultra"] is True
        and "alchemy" not in lucid
        and lucid["modelId"] == LEONARDO.card("lucid-realism").vendor_id
    )
    assert flux["seed"] == 3_000_000_000 % 2_147_483_638  # Flux seeds stop at 2147483637
    assert "presetStyle" not in flux and flux["contrast"] == 3.5


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"alchemy": True, "ultra": True}, "alchemy and ultra"),
        ({"alchemy": True, "contrast": 1.8}, "needs 2.5"),
        ({"init_strength": 0.5}, "init_strength without a reference"),
    ],
)
def test_combinations_leonardo_refuses_are_refused_before_any_request(sim, options, needle) -> None:
    error = refused(lambda: _adapter(sim).submit(_spec(options=options)), ErrorKind.invalid_input)
    assert needle in str(error)
    assert [r for r in sim.requests() if r["vendor"] == "leonardo"] == []


def test_a_model_is_named_readably_or_by_its_uuid() -> None:
    def card(model: str, vendor_id: str | None = None) -> ModelCard:
        return ModelCard(provider="leonardo", model=model, vendor_id=vendor_id, capability=Capability.image)

    phoenix = "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3"
    assert model_of(LEONARDO.card("phoenix-1.0")).id == phoenix
    assert model_of(card("my-phoenix", phoenix)).id == phoenix
    assert model_of(card("05ce0082-2d80-4a2d-8653-4d1c85e2418e")).id == "05ce0082-2d80-4a2d-8653-4d1c85e2418e"
    refused(lambda: model_of(card("phoenix-2")), ErrorKind.invalid_input)
    declared = LEONARDO.cards(Capability.image)
    assert all(c.vendor_id for c in declared) and {c.vendor_id for c in declared} <= set(simulated.MODELS)


def test_a_model_leonardo_does_not_know_is_invalid_input(sim) -> None:
    generator = _adapter(sim)
    card = generator.check(_spec()).model_copy(
        update={"model": "00000000-0000-4000-8000-000000000000", "vendor_id": None}
    )

    def sent() -> str:
        with generator.calling("create"):
            return generator.create(_spec(), card)

    assert "not found" in str(refused(sent, ErrorKind.invalid_input))


# -- references: the init-image upload flow ---------------------------------------------------------------------------


def test_a_reference_is_uploaded_as_the_init_image_once_and_without_our_key(sim, tmp_path: Path) -> None:
    ref = image_ref(tmp_path / "ref.jpg", fmt="JPEG")
    generator = _adapter(sim)
    spec = _spec(inputs=(ref,), options={"init_strength": 0.4})
    run_job(generator, spec)
    run_job(generator, spec.model_copy(update={"seed": 8}))
    uploads, stored = _calls(sim, "/init-image"), _calls(sim, "/_s3/leonardo-init-images")
    assert [u["body"] for u in uploads] == [{"extension": "jpg"}]  # the second job reused it
    assert len(stored) == 1 and "authorization" not in stored[0]["headers"]
    creates = [c["body"] for c in _calls(sim)]
    assert creates[0]["init_image_id"] == creates[1]["init_image_id"] and creates[0]["init_strength"] == 0.4


def test_style_references_go_as_image_prompts_and_other_images_as_png(sim, tmp_path: Path) -> None:
    refs = (
        image_ref(tmp_path / "a.gif", "style_reference", fmt="GIF"),
        image_ref(tmp_path / "b.webp", "style_reference", fmt="WEBP"),
    )
    run_job(_adapter(sim, "lightning-xl"), _spec("lightning-xl", inputs=refs))
    assert [u["body"]["extension"] for u in _calls(sim, "/init-image")] == ["png", "webp"]
    body = _calls(sim)[0]["body"]
    assert len(body["imagePrompts"]) == 2 and "init_image_id" not in body


@pytest.mark.parametrize("model", ["phoenix-1.0", "lightning-xl"])
def test_a_reference_that_is_not_an_image_is_refused_before_any_request(sim, tmp_path: Path, model) -> None:
    ref = not_an_image(tmp_path / "brief.png", "reference" if model == "phoenix-1.0" else "style_reference")
    error = refused(lambda: _adapter(sim, model).submit(_spec(model, inputs=(ref,))), ErrorKind.invalid_input)
    assert "not image media" in str(error)
    assert [r for r in sim.requests() if r["vendor"] == "leonardo"] == []


def test_a_link_only_reference_and_too_many_references_are_refused(sim, tmp_path: Path) -> None:
    linked = InputRef(role="reference", uri="https://cdn.example.com/ref.png", sha256="y")
    refused(lambda: _adapter(sim).submit(_spec(inputs=(linked,))), ErrorKind.invalid_input)
    two = (image_ref(tmp_path / "a.png"), image_ref(tmp_path / "b.png"))
    refused(lambda: _adapter(sim).submit(_spec(inputs=two)), ErrorKind.invalid_input)
    assert [r for r in sim.requests() if r["vendor"] == "leonardo"] == []


# -- Leonardo's own answers -----------------------------------------------------------------------------------------


def test_a_key_that_is_not_a_uuid_is_auth_not_a_passing_500(sim) -> None:
    error = refused(lambda: _adapter(sim, api_key="lk-not-a-uuid").submit(_spec()), ErrorKind.auth)
    assert not error.kind.transient and "authorization hook" in str(error)
    assert "lk-not-a-uuid" not in str(error)
    assert _calls(sim)[0]["status"] == 500


def test_an_empty_token_balance_is_insufficient_credits(sim) -> None:
    _limits(sim, api_tokens=0)
    refused(lambda: _adapter(sim).submit(_spec()), ErrorKind.insufficient_credits)


def test_the_concurrency_limit_is_rate_limited(sim) -> None:
    _limits(sim, concurrency=0)
    error = refused(lambda: _adapter(sim).submit(_spec()), ErrorKind.rate_limited)
    assert "concurrency limit" in str(error)


def test_a_moderated_prompt_names_the_term(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation"])
    error = refused(lambda: _adapter(sim).submit(_spec()), ErrorKind.moderation_input)
    assert "content moderation filter" in str(error)


def test_a_flagged_output_is_never_downloaded(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["moderation_output"])
    with pytest.raises(JobFailed) as caught:
        run_job(_adapter(sim), _spec())
    assert caught.value.kind is ErrorKind.moderation_output
    assert [r for r in sim.requests() if "/_media/" in r["path"]] == []


def test_a_failed_generation_is_transient(sim) -> None:
    sim.configure(fault_rate=1.0, faults=["failed"])
    with pytest.raises(JobFailed) as caught:
        run_job(_adapter(sim), _spec())
    assert caught.value.kind is ErrorKind.generation_failed and caught.value.kind.transient


def test_a_generation_leonardo_does_not_have_is_not_found(sim) -> None:
    job = JobRef(provider="leonardo", job_id="00000000-0000-4000-8000-000000000000", spec_key="0")
    refused(lambda: _adapter(sim).poll(job), ErrorKind.not_found)
    assert _calls(sim, job.job_id, "GET")[0]["status"] == 200  # Hasura: 200 with null


# -- cost in dollars -----------------------------------------------------------------------------------------------


def test_a_cost_in_dollars_is_booked_as_it_is_and_credits_are_not() -> None:
    assert _dollars({"cost": {"amount": "0.042", "unit": "DOLLARS"}}) == 0.042
    assert _dollars({"cost": {"amount": "11", "unit": "CREDITS"}, "apiCreditCost": 11}) is None
    assert _dollars({"apiCreditCost": 11}) is None

    png = io.BytesIO()
    Image.new("RGB", (1280, 720)).save(png, "PNG")
    generation_id = "0b0b0b0b-0000-4000-8000-000000000001"

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            job = {
                "generationId": generation_id,
                "apiCreditCost": 11,
                "cost": {"amount": "0.0345", "unit": "DOLLARS"},
            }
            return httpx.Response(200, json={"sdGenerationJob": job})
        if request.url.path.endswith(".png"):
            return httpx.Response(200, content=png.getvalue(), headers={"content-type": "image/png"})
        image = {"id": "i", "url": "https://cdn.leonardo.ai/i.png", "nsfw": False}
        generation = {"id": generation_id, "status": "COMPLETE", "generated_images": [image]}
        return httpx.Response(200, text=json.dumps({"generations_by_pk": generation}))

    generator = LeonardoImage(
        base_url="https://cloud.leonardo.ai/api/rest/v1", api_key=KEY, time_scale=0.001,
        http_client=httpx.Client(transport=httpx.MockTransport(vendor)),
    )  # fmt: skip
    made = run_job(generator, _spec(), sleep=lambda s: None)
    assert made.cost_usd == 0.0345 and (made.width, made.height) == (1280, 720)
