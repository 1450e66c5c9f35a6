"""The Luma adapter, through the official `lumaai` SDK, against the Dream Machine simulator over loopback HTTP."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

import httpx
import lumaai
import pytest
import yaml
from lumaai.types import Generation, GenerationUpscaleParams
from lumaai.types.generations import ImageCreateParams, VideoCreateParams, VideoModifyParams
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, Continuity, InputRef
from cutroom.brief import Brief, BriefError, load_brief
from cutroom.capabilities import Capability
from cutroom.channels import Aspect
from cutroom.media import last_frame, probe
from cutroom.requests import AssetRequest
from cutroom.specs import keyframe_spec
from providers import declarations, registry, simulation
from providers.errors import ErrorKind, JobFailed, ProviderError
from providers.local.planner import LocalPlanner
from providers.luma import (
    AGENTS_MODELS,
    IMAGE_REF_WEIGHT,
    LumaAgentsVideo,
    LumaImage,
    LumaVideo,
)
from providers.polling import run_job, wait_for
from providers.protocol import JobRef, JobState
from simulator import luma as sim_luma
from tasks.requests import check as check_request
from tests.vendor_helpers import literals, on_simulator

if TYPE_CHECKING:
    from tests.simulator_fixture import SimulatorHandle

SCALE = 0.02  # ray-flash-2's 60 s becomes 1.2 s, photon-flash-1's 10 s becomes 0.2 s
LUMA = declarations.vendor("luma")
SIMULATOR_PREFIX = LUMA.simulator.prefix  # type: ignore[union-attr]
KEY = LUMA.simulator.key  # type: ignore[union-attr]
CREATE = "/generations/video"
#: A Luma generation id that the simulator never handed out (the shape Luma's are).
UNKNOWN_ID = "00000000-0000-0000-0000-000000000000"
DREAM_MACHINE_VIDEO = [c for c in LUMA.cards(Capability.video) if c.model not in AGENTS_MODELS]


@pytest.fixture
def sim(simulator: SimulatorHandle) -> SimulatorHandle:
    simulator.reset(latency_scale=SCALE)
    return simulator


def base_url(sim: SimulatorHandle) -> str:
    return sim.url + SIMULATOR_PREFIX


def video(sim: SimulatorHandle, **options: Any) -> LumaVideo:
    return on_simulator(LumaVideo, sim, "ray-flash-2", scale=SCALE, **options)


def image(sim: SimulatorHandle) -> LumaImage:
    return on_simulator(LumaImage, sim, "photon-flash-1", scale=SCALE)


def video_spec(**changes: Any) -> AssetSpec:
    fields = {
        "kind": AssetKind.video,
        "provider": "luma",
        "model": "ray-flash-2",
        "prompt": "a red bicycle on a coastal road at dawn",
        "aspect": Aspect.vertical,
        "duration_s": 5.0,
    }
    return AssetSpec(**{**fields, **changes})


def logged(sim: SimulatorHandle, method: str, suffix: str = "") -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["method"] == method and r["path"].split("?")[0].endswith(suffix)]


def finish(adapter: LumaVideo | LumaImage, job: JobRef) -> None:
    """Poll until the job is done (the simulator's clock decides)."""
    deadline = time.monotonic() + 10
    while adapter.poll(job).state is not JobState.SUCCEEDED:
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.1)


def test_text_to_video_end_to_end_makes_one_vendor_correct_create(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    out = run_job(video(sim), video_spec())

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(out.data)
    info = probe(clip)
    assert out.mime == "video/mp4" and (info.width, info.height) == (out.width, out.height)
    assert info.width / info.height == pytest.approx(9 / 16, abs=0.01) and info.duration_s == pytest.approx(
        5, 0.1
    )
    assert last_frame(clip, tmp_path / "last.png").exists()  # decodable to the end
    assert out.cost_usd == pytest.approx(5 * LUMA.card("ray-flash-2").price.usd)  # 5 s at the card's rate

    (create,) = logged(sim, "POST")
    assert create["path"] == SIMULATOR_PREFIX + CREATE
    assert create["body"] == {
        "model": "ray-flash-2",
        "prompt": "a red bicycle on a coastal road at dawn",
        "loop": False,
        "aspect_ratio": "9:16",
        "duration": "5s",
    }
    api = [r for r in sim.requests() if "/_media/" not in r["path"]]
    assert {r["headers"]["authorization"] for r in api} == {"Bearer …"}
    (download,) = logged(sim, "GET", ".mp4")
    assert "authorization" not in download["headers"]  # CDN links are unauthenticated


def test_image_to_video_sends_an_image_keyframe(sim: SimulatorHandle, tmp_path: Path) -> None:
    keyframe = InputRef(role="keyframe", uri="https://cdn.example.com/key.png", sha256="0" * 64)
    out = run_job(video(sim), video_spec(aspect=Aspect.landscape, inputs=(keyframe,), width=1280, height=720))

    (clip := tmp_path / "clip.mp4").write_bytes(out.data)
    assert probe(clip).width / probe(clip).height == pytest.approx(16 / 9, abs=0.01)
    (create,) = logged(sim, "POST")
    assert create["body"]["keyframes"] == {
        "frame0": {"type": "image", "url": "https://cdn.example.com/key.png"}
    }
    assert create["body"]["resolution"] == "720p"  # the spec's size, by Luma's name

    video(sim).submit(video_spec(inputs=(keyframe,), width=1280, height=720, options={"resolution": "1080p"}))
    assert logged(sim, "POST")[-1]["body"]["resolution"] == "1080p"  # the option, over the size


def test_image_job_returns_a_png(sim: SimulatorHandle) -> None:
    spec = AssetSpec(
        kind=AssetKind.image,
        provider="luma",
        model="photon-flash-1",
        prompt="a lighthouse",
        aspect=Aspect.square,
    )
    out = run_job(image(sim), spec)

    picture = Image.open(io.BytesIO(out.data))
    assert picture.format == "PNG" and out.mime == "image/png" and picture.size == (out.width, out.height)
    assert picture.width == picture.height
    (create,) = logged(sim, "POST")
    assert create["path"] == SIMULATOR_PREFIX + "/generations/image"
    assert create["body"] == {
        "model": "photon-flash-1",
        "prompt": "a lighthouse",
        "format": "png",
        "aspect_ratio": "1:1",
    }


def test_a_shot_chains_from_a_finished_generation_and_a_bogus_id_is_invalid(sim: SimulatorHandle) -> None:
    adapter = video(sim)
    first = adapter.submit(video_spec())
    finish(adapter, first)

    chained = InputRef(role="first_frame", uri=f"luma-generation:{first.job_id}", sha256="0" * 64)
    second = adapter.submit(video_spec(inputs=(chained,)))
    assert second.job_id != first.job_id
    assert logged(sim, "POST")[-1]["body"]["keyframes"] == {
        "frame0": {"type": "generation", "id": first.job_id}
    }

    bogus = InputRef(role="first_frame", uri=f"luma-generation:{UNKNOWN_ID}", sha256="0")
    with pytest.raises(ProviderError) as caught:
        adapter.submit(video_spec(inputs=(bogus,)))
    assert caught.value.kind is ErrorKind.invalid_input and "not found" in str(caught.value)


def test_luma_rejects_a_7s_duration_and_the_card_stops_it_before_any_request(sim: SimulatorHandle) -> None:
    client = lumaai.LumaAI(auth_token=KEY, base_url=base_url(sim), max_retries=0)
    with pytest.raises(lumaai.BadRequestError) as caught:
        client.generations.video.create(model="ray-2", prompt="a cat", duration="7s")
    assert caught.value.status_code == 400
    assert caught.value.body == {"detail": "duration must be one of 5s, 9s, got '7s'"}

    sim.reset(latency_scale=SCALE)
    with pytest.raises(ProviderError) as refused:
        video(sim).submit(video_spec(duration_s=7.0))
    assert refused.value.kind is ErrorKind.invalid_input and "allowed: 5, 9" in str(refused.value)
    assert sim.requests() == []


def test_auth_missing_wrong_and_unconfigured(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = httpx.get(base_url(sim) + "/credits")
    assert (answer.status_code, answer.json()) == (401, {"detail": "Not authenticated"})

    wrong = LumaVideo(base_url=base_url(sim), api_key="sk-not-luma")
    with pytest.raises(ProviderError) as caught:
        wrong.submit(video_spec())
    assert caught.value.kind is ErrorKind.auth and not caught.value.kind.transient

    monkeypatch.delenv("LUMAAI_API_KEY", raising=False)
    monkeypatch.delenv(simulation.SIMULATOR_ENV, raising=False)
    sim.reset(latency_scale=SCALE)
    with pytest.raises(ProviderError) as missing:
        LumaVideo().submit(video_spec())
    assert missing.value.kind is ErrorKind.not_configured and "LUMAAI_API_KEY" in str(missing.value)
    assert sim.requests() == []


def test_local_files_are_refused_before_any_request(sim: SimulatorHandle) -> None:
    local = InputRef(role="keyframe", uri="file:///tmp/key.png", sha256="0" * 64)
    with pytest.raises(ProviderError) as caught:
        video(sim).submit(video_spec(inputs=(local,)))
    assert caught.value.kind is ErrorKind.invalid_input and "public http(s) URL" in str(caught.value)
    assert sim.requests() == []


@pytest.mark.parametrize(
    ("fault", "kind", "in_message"),
    [
        ("429", ErrorKind.rate_limited, "HTTP 429"),
        ("5xx", ErrorKind.generation_failed, "HTTP 503"),
        ("timeout", ErrorKind.generation_failed, "timed out"),
        ("reset", ErrorKind.generation_failed, "connection failed"),
        ("malformed", ErrorKind.generation_failed, "unreadable answer"),
    ],
)
def test_transport_faults_map_to_the_taxonomy_and_never_repeat_a_create(
    sim: SimulatorHandle, fault: str, kind: ErrorKind, in_message: str
) -> None:
    sim.configure(fault_rate=1.0, faults=[fault], retry_after_s=2.5, timeout_s=1.5)
    with pytest.raises(ProviderError) as caught:
        video(sim, timeout=0.5).submit(video_spec())

    assert caught.value.kind is kind and caught.value.kind.transient
    assert in_message in str(caught.value)
    assert caught.value.retry_after == (2.5 if fault == "429" else None)
    assert len(logged(sim, "POST")) == 1  # the SDK did not resend the paid create


def test_the_sdk_default_would_resend_a_create_on_5xx(sim: SimulatorHandle) -> None:
    """Why creates use max_retries=0: a stock client posts the same paid create three times."""
    sim.configure(fault_rate=1.0, faults=["5xx"])
    stock = lumaai.LumaAI(auth_token=KEY, base_url=base_url(sim))
    with pytest.raises(lumaai.InternalServerError):
        stock.generations.video.create(model="ray-flash-2", prompt="a cat")
    assert len(logged(sim, "POST")) == 3


def test_reset_is_a_dropped_connection_not_a_500(sim: SimulatorHandle) -> None:
    sim.configure(fault_rate=1.0, faults=["reset"])
    with pytest.raises(httpx.TransportError):
        httpx.get(base_url(sim) + "/credits", headers={"Authorization": f"Bearer {KEY}"})
    assert [r["status"] for r in sim.requests()] == [-1]


@pytest.mark.parametrize(
    ("fault", "kind"), [("failed", ErrorKind.generation_failed), ("moderation", ErrorKind.moderation_input)]
)
def test_failed_and_moderated_jobs(sim: SimulatorHandle, fault: str, kind: ErrorKind) -> None:
    sim.configure(fault_rate=1.0, faults=[fault])
    with pytest.raises(JobFailed) as caught:  # the job ended without an output: nothing to bill
        run_job(video(sim), video_spec())
    assert caught.value.kind is kind
    assert caught.value.kind.transient is (fault == "failed")  # moderation needs a new prompt, not a retry
    if fault == "moderation":
        assert sim_luma.MODERATION_REASON in str(caught.value)


def test_an_expired_output_url_is_not_found(sim: SimulatorHandle) -> None:
    sim.configure(fault_rate=1.0, faults=["expired"])
    with pytest.raises(ProviderError) as drawn:
        run_job(video(sim), video_spec())
    assert drawn.value.kind is ErrorKind.not_found and "expired" in str(drawn.value)
    assert not drawn.value.kind.transient

    sim.reset(latency_scale=SCALE, output_ttl_s=0.05)
    adapter = video(sim)
    job = adapter.submit(video_spec())
    finish(adapter, job)
    time.sleep(0.1)
    with pytest.raises(ProviderError) as aged:
        adapter.fetch(job)
    assert aged.value.kind is ErrorKind.not_found
    assert logged(sim, "GET", ".mp4")[-1]["status"] == 403


def test_polls_follow_the_schedule(sim: SimulatorHandle) -> None:
    sim.configure(latency_jitter=0.0)  # the job takes exactly the model's scaled mean
    adapter = video(sim)
    run_job(adapter, video_spec())

    (create,) = logged(sim, "POST")
    polls = [r["time"] - create["time"] for r in logged(sim, "GET") if "/_media/" not in r["path"]]
    # No look right after submit: the first comes at ~0.8x the expected latency.
    assert polls[0] >= adapter.schedule.first() * 0.95
    assert len(polls) <= 3, f"{len(polls)} polls for a job of known latency: {polls}"


def test_callback_url_credits_concepts_list_and_delete(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUTROOM_SIMULATOR_URL", sim.url)
    monkeypatch.setenv("CUTROOM_CALLBACK_URL", "http://127.0.0.1:9/luma")
    adapter = LumaVideo()  # base URL and dummy key from CUTROOM_SIMULATOR_URL
    job = adapter.submit(video_spec())
    assert logged(sim, "POST")[0]["body"]["callback_url"] == "http://127.0.0.1:9/luma"

    assert adapter.credits() == sim_luma.CREDIT_BALANCE_CENTS / 100
    assert "dolly_zoom" in adapter.client.generations.concepts.list()
    assert job.job_id in [g.id for g in adapter.client.generations.list(limit=50).generations]
    adapter.delete(job)
    with pytest.raises(ProviderError) as gone:
        adapter.poll(job)
    assert gone.value.kind is ErrorKind.not_found


def refs_of(role: str, count: int) -> tuple[InputRef, ...]:
    """`count` inputs of one role, each a different public image."""
    return tuple(
        InputRef(role=role, uri=f"https://cdn.example.com/{role}-{i}.png", sha256="0") for i in range(count)
    )


def source_of(job: JobRef, role: str = "source", **fields: Any) -> InputRef:
    """An input that belongs to an earlier Luma generation (how the flow hands a finished clip on)."""
    return InputRef(
        role=role,
        uri=f"s3://cutroom/{job.job_id}.mp4",
        sha256="0" * 64,
        continues=f"luma:{job.job_id}",
        **fields,
    )


#: The source of an edit: an earlier Luma generation, by an id of Luma's shape that the simulator does not know.
SOURCE = InputRef(role="source", uri="s3://b/c.mp4", sha256="0", continues=f"luma:{UNKNOWN_ID}")


def finished_clip(sim: SimulatorHandle) -> tuple[LumaVideo, JobRef]:
    adapter = video(sim)
    job = adapter.submit(video_spec())
    finish(adapter, job)
    return adapter, job


def test_loop_is_sent_and_luma_refuses_a_non_boolean_loop(sim: SimulatorHandle) -> None:
    video(sim).submit(video_spec(loop=True))
    assert logged(sim, "POST")[-1]["body"]["loop"] is True

    client = lumaai.LumaAI(auth_token=KEY, base_url=base_url(sim), max_retries=0)
    with pytest.raises(lumaai.BadRequestError) as caught:
        client.generations.video.create(model="ray-2", prompt="a cat", loop="yes")  # type: ignore[arg-type]
    assert caught.value.body == {"detail": "loop must be a boolean"}


def test_extend_and_reverse_extend_chain_from_a_generation_or_end_on_an_image(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    adapter, first = finished_clip(sim)

    adapter.submit(video_spec(inputs=(source_of(first, "first_frame"),)))
    assert logged(sim, "POST")[-1]["body"]["keyframes"] == {
        "frame0": {"type": "generation", "id": first.job_id}
    }

    reverse = adapter.submit(video_spec(inputs=(source_of(first, "last_frame"),)))
    assert logged(sim, "POST")[-1]["body"]["keyframes"] == {
        "frame1": {"type": "generation", "id": first.job_id}
    }

    end_image = InputRef(
        role="last_frame", uri="s3://b/end.png", sha256="0", url="https://cdn.example.com/end.png"
    )
    start_image = InputRef(role="first_frame", uri="https://cdn.example.com/start.png", sha256="0")
    adapter.submit(video_spec(inputs=(start_image, end_image)))
    assert logged(sim, "POST")[-1]["body"]["keyframes"] == {
        "frame0": {"type": "image", "url": "https://cdn.example.com/start.png"},
        "frame1": {"type": "image", "url": "https://cdn.example.com/end.png"},
    }
    assert {r["status"] for r in logged(sim, "POST")} == {
        200
    }  # the simulator takes frame1 like the SDK sends it

    finish(adapter, reverse)
    (clip := tmp_path / "reverse.mp4").write_bytes(adapter.fetch(reverse).data)
    assert probe(clip).duration_s == pytest.approx(5, 0.1)

    with pytest.raises(ProviderError) as twice:
        adapter.submit(video_spec(inputs=(source_of(first, "last_frame"), end_image)))
    assert twice.value.kind is ErrorKind.invalid_input and "frame1" in str(twice.value)


def test_upscale_audio_modify_and_reframe_act_on_a_finished_generation(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    adapter, first = finished_clip(sim)
    first_url = adapter.client.generations.get(first.job_id).assets.video  # type: ignore[union-attr]
    source = source_of(first)
    linked = InputRef(role="source", uri="s3://cutroom/clip.mp4", sha256="0", url=first_url)
    specs = {
        "upscale": video_spec(operation="upscale", inputs=(source,), width=1080, height=1920),
        "audio": video_spec(operation="add_audio", prompt="waves and gulls", inputs=(source,)),
        "modify": video_spec(operation="modify", prompt="as a watercolour", inputs=(source,)),
        "reframe": video_spec(operation="reframe", aspect=Aspect.square, prompt="", inputs=(linked,)),
    }
    jobs = {name: adapter.submit(spec) for name, spec in specs.items()}
    default_mode = LUMA.card("ray-flash-2").options["mode"].default

    bodies = {r["path"].removeprefix(SIMULATOR_PREFIX): r["body"] for r in logged(sim, "POST")[1:]}
    assert bodies == {
        f"/generations/{first.job_id}/upscale": {"generation_type": "upscale_video", "resolution": "1080p"},
        f"/generations/{first.job_id}/audio": {"generation_type": "add_audio", "prompt": "waves and gulls"},
        "/generations/video/modify": {
            "model": "ray-flash-2",
            "generation_type": "modify_video",
            "media": {"url": first_url},  # looked up from the generation: the input had no link of its own
            "mode": default_mode,  # the card's default: the SDK requires a mode
            "prompt": "as a watercolour",
        },
        "/generations/video/reframe": {
            "model": "ray-flash-2",
            "generation_type": "reframe_video",
            "media": {"url": first_url},
            "aspect_ratio": "1:1",
        },
    }

    clips = {}
    for name, job in jobs.items():
        finish(adapter, job)
        clips[name] = tmp_path / f"{name}.mp4"
        clips[name].write_bytes(adapter.fetch(job).data)
    original = probe(clips["modify"])
    upscaled = probe(clips["upscale"])
    assert original.width / original.height == pytest.approx(9 / 16, abs=0.01)  # modify keeps the frame
    assert upscaled.height > original.height and upscaled.width / upscaled.height == pytest.approx(
        9 / 16, 0.02
    )
    assert probe(clips["audio"]).has_audio and not original.has_audio
    reframed = probe(clips["reframe"])
    assert reframed.width == reframed.height


def test_an_image_is_reframed_to_a_new_aspect(sim: SimulatorHandle) -> None:
    adapter = image(sim)
    still = adapter.submit(
        AssetSpec(kind=AssetKind.image, provider="luma", model="photon-flash-1", prompt="a lighthouse")
    )
    finish(adapter, still)
    spec = AssetSpec(
        kind=AssetKind.image,
        provider="luma",
        model="photon-flash-1",
        prompt="more sea",
        aspect=Aspect.vertical,
        operation="reframe",
        inputs=(source_of(still),),
    )
    out = run_job(adapter, spec)

    picture = Image.open(io.BytesIO(out.data))
    assert picture.format == "PNG" and picture.width / picture.height == pytest.approx(9 / 16, abs=0.01)
    create = logged(sim, "POST")[-1]
    assert create["path"] == SIMULATOR_PREFIX + "/generations/image/reframe"
    assert create["body"]["generation_type"] == "reframe_image" and create["body"]["aspect_ratio"] == "9:16"
    assert create["body"]["media"]["url"].endswith(f"/_media/{still.job_id}.png")


PHOTON = {"kind": AssetKind.image, "model": "photon-flash-1"}


@pytest.mark.parametrize(
    ("adapter_for", "spec", "in_message"),
    [
        (image, dict(PHOTON, operation="upscale"), "operation upscale (it does: modify, reframe)"),
        (image, dict(PHOTON, operation="add_audio"), "operation add_audio (it does: modify, reframe)"),
        (video, dict(operation="reframe", aspect=None), "needs spec.aspect"),
        (video, dict(operation="upscale", inputs=()), "without exactly one input with role source"),
        (video, dict(operation="modify", inputs=(SOURCE, *refs_of("keyframe", 1))), "takes only its source"),
        (video, dict(inputs=(InputRef(role="source", uri="https://x/a.mp4", sha256="0"),)), "from a source input"),
        (video, dict(operation="modify", options={"mode": "flex_9"}), "option mode='flex_9' (allowed: adhere_1|"),
        (video, dict(operation="modify", options={"mode": 0.5}), "option mode=0.5 (allowed: adhere_1|"),
        (video, dict(options={"mode": "flex_1"}, inputs=()), "option mode only for operation modify"),
        (video, dict(operation="upscale", options={"mode": "flex_1"}), "option mode only for operation modify"),
        (video, dict(operation="reframe", aspect=Aspect.square, options={"resolution": "1080p"}),
         "keeps the source's resolution"),
        (video, dict(options={"resolution": "8k"}, inputs=()), "option resolution='8k' (allowed: 540p|720p|1080p|4k)"),
        (video, dict(options={"strength": 0.5}, inputs=()), "option strength (its options: resolution, mode)"),
        (video, dict(operation="modify", inputs=(InputRef(role="source", uri="s3://b/c.mp4", sha256="0",
         continues="luma:abc"),)), "'abc' is not a luma job id"),
        (image, dict(PHOTON, operation="modify", options={"weight": "flex_1"}), "option weight='flex_1' (allowed: float 0..1)"),
        (image, dict(PHOTON, operation="modify", options={"weight": 1.5}), "option weight=1.5 (allowed: float 0..1)"),
        (image, dict(PHOTON, options={"weight": 0.5}, inputs=()), "option weight only for operation modify"),
        (image, dict(PHOTON, options={"resolution": "1080p"}, inputs=()), "option resolution (its options: weight)"),
        (image, dict(PHOTON, inputs=refs_of("reference", 5)), "up to 4 images in image_ref"),
        (image, dict(PHOTON, inputs=refs_of("character_reference", 5)), "up to 4 images in character_ref"),
        (image, dict(PHOTON, inputs=refs_of("keyframe", 1)), "from a keyframe input (it takes: reference, "),
        (image, dict(PHOTON, inputs=(InputRef(role="reference", uri="file:///tmp/ref.png", sha256="0"),)),
         "public http(s) URL for the reference image, got file:///tmp/ref.png: set --reference"),
    ],
)  # fmt: skip
def test_impossible_operations_are_refused_before_any_request(
    sim: SimulatorHandle, adapter_for: Any, spec: dict[str, Any], in_message: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        adapter_for(sim).submit(video_spec(**{"inputs": (SOURCE,), **spec}))
    assert caught.value.kind is ErrorKind.invalid_input and in_message in str(caught.value)
    assert sim.requests() == []


def test_upscale_needs_a_luma_generation_and_luma_validates_the_edit_endpoints(sim: SimulatorHandle) -> None:
    foreign = InputRef(role="source", uri="https://cdn.example.com/clip.mp4", sha256="0")
    with pytest.raises(ProviderError) as caught:
        video(sim).submit(video_spec(operation="upscale", inputs=(foreign,)))
    assert caught.value.kind is ErrorKind.invalid_input and "continues='luma:" in str(caught.value)

    client = lumaai.LumaAI(auth_token=KEY, base_url=base_url(sim), max_retries=0)
    media = {"url": "https://cdn.example.com/clip.mp4"}
    with pytest.raises(lumaai.NotFoundError):
        client.generations.upscale(UNKNOWN_ID, resolution="4k")
    with pytest.raises(lumaai.BadRequestError) as mode:
        client.generations.video.modify(
            generation_type="modify_video",
            media=media,
            model="ray-2",
            mode="wild",  # type: ignore[arg-type]
        )
    assert mode.value.body["detail"].startswith("mode must be one of adhere_1")  # type: ignore[index]
    with pytest.raises(lumaai.BadRequestError) as aspect:
        client.generations.video.reframe(
            generation_type="reframe_video",
            media=media,
            model="ray-2",
            aspect_ratio="2:1",  # type: ignore[arg-type]
        )
    assert "aspect_ratio must be one of" in aspect.value.body["detail"]  # type: ignore[index]
    with pytest.raises(lumaai.BadRequestError) as url:
        client.generations.image.reframe(
            generation_type="reframe_image",
            media={"url": "file:///a.png"},
            model="photon-1",
            aspect_ratio="1:1",
        )
    assert url.value.body == {"detail": "media.url must be an http(s) URL"}


class _Receiver(BaseHTTPRequestHandler):
    """Records callback bodies; answers the very first one with a 500 so the retry shows."""

    posts: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.posts.append(body)
        self.send_response(500 if len(self.posts) == 1 else 200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest's output clean


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    posts: list[dict[str, Any]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Receiver", (_Receiver,), {"posts": posts}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/luma-hook", posts
    server.shutdown()
    server.server_close()


def test_callbacks_post_each_state_change_in_order_and_retry_a_refused_one(
    sim: SimulatorHandle, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, posts = receiver
    adapter = video(sim, callback_url=url)
    job = adapter.submit(video_spec())
    finish(adapter, job)
    deadline = time.monotonic() + 5
    while len(posts) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)

    # The first queued post got a 500 and was sent again; then one post per state, in order.
    assert [p["state"] for p in posts] == ["queued", "queued", "dreaming", "completed"]
    generations = [Generation.model_validate(p) for p in posts]  # the body is the SDK's Generation, whole
    assert {g.id for g in generations} == {job.job_id}
    assert generations[-1].assets and generations[-1].assets.video
    assert generations[0].request and generations[0].request.callback_url == url  # type: ignore[union-attr]


def image_spec(**changes: Any) -> AssetSpec:
    fields = {
        "kind": AssetKind.image,
        "provider": "luma",
        "model": "photon-flash-1",
        "prompt": "a lighthouse",
    }
    return AssetSpec(**{**fields, **changes})


def finished_still(sim: SimulatorHandle) -> tuple[LumaImage, JobRef, str]:
    """A finished 9:16 Photon image, and its CDN link."""
    adapter = image(sim)
    still = adapter.submit(image_spec(aspect=Aspect.vertical))
    finish(adapter, still)
    return adapter, still, adapter.client.generations.get(still.job_id).assets.image  # type: ignore[union-attr]


def test_photon_references_go_out_as_image_style_and_character_refs(sim: SimulatorHandle) -> None:
    adapter, still, still_url = finished_still(sim)
    refs = (
        InputRef(role="reference", uri="https://cdn.example.com/a.png", sha256="0"),
        source_of(still, "reference"),  # an earlier Photon image: its link is looked up
        InputRef(
            role="style_reference", uri="s3://b/look.png", sha256="0", url="https://cdn.example.com/look.png"
        ),
        *refs_of("character_reference", 2),
    )
    out = run_job(adapter, image_spec(aspect=Aspect.square, inputs=refs))

    picture = Image.open(io.BytesIO(out.data))
    assert picture.format == "PNG" and picture.width == picture.height
    create = logged(sim, "POST")[-1]
    assert create["path"] == SIMULATOR_PREFIX + "/generations/image" and create["status"] == 200
    assert create["body"] == {
        "model": "photon-flash-1",
        "prompt": "a lighthouse",
        "format": "png",
        "aspect_ratio": "1:1",
        "image_ref": [
            {"url": "https://cdn.example.com/a.png", "weight": IMAGE_REF_WEIGHT},
            {"url": still_url, "weight": IMAGE_REF_WEIGHT},
        ],
        "style_ref": [{"url": "https://cdn.example.com/look.png", "weight": IMAGE_REF_WEIGHT}],
        "character_ref": {"identity0": {"images": [r.uri for r in refs_of("character_reference", 2)]}},
    }


def test_an_image_modify_keeps_its_sources_frame_and_sends_its_weight(
    sim: SimulatorHandle,
) -> None:
    adapter, still, still_url = finished_still(sim)
    spec = image_spec(
        prompt="the lighthouse at night", aspect=Aspect.landscape, operation="modify", options={"weight": 0.3},
        inputs=(source_of(still),),
    )  # fmt: skip
    out = run_job(adapter, spec)

    picture = Image.open(io.BytesIO(out.data))
    assert picture.width / picture.height == pytest.approx(9 / 16, abs=0.01)  # the source's frame
    create = logged(sim, "POST")[-1]
    assert create["path"] == SIMULATOR_PREFIX + "/generations/image"
    assert create["body"] == {
        "model": "photon-flash-1",
        "prompt": "the lighthouse at night",
        "format": "png",
        "modify_image_ref": {"url": still_url, "weight": 0.3},
    }
    adapter.submit(image_spec(operation="modify", inputs=(source_of(still),)))
    assert logged(sim, "POST")[-1]["body"]["modify_image_ref"] == {"url": still_url}  # Luma's own default


def test_a_video_modify_sends_its_mode(sim: SimulatorHandle) -> None:
    adapter, first = finished_clip(sim)
    adapter.submit(
        video_spec(operation="modify", options={"mode": "reimagine_2"}, inputs=(source_of(first),))
    )
    create = logged(sim, "POST")[-1]
    assert create["path"] == SIMULATOR_PREFIX + "/generations/video/modify" and create["status"] == 200
    assert create["body"]["mode"] == "reimagine_2"


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"modify_image_ref": {"url": "https://cdn.example.com/a.png", "weight": 2}},
         "modify_image_ref.weight must be a number from 0 to 1"),
        ({"modify_image_ref": {"url": "file:///a.png"}}, "modify_image_ref.url must be an http(s) URL"),
        ({"image_ref": [{"url": r.uri} for r in refs_of("reference", 5)]}, "image_ref takes at most 4 images"),
        ({"style_ref": [{"url": "https://cdn.example.com/s.png", "weight": "heavy"}]},
         "style_ref[0].weight must be a number from 0 to 1"),
        ({"character_ref": {"identity0": {"images": []}}}, "character_ref.identity0.images must list 1 to 4 URLs"),
        ({"character_ref": {"identity0": {"images": ["ftp://x/y.png"]}}},
         "character_ref.identity0.images must be http(s) URLs"),
    ],
)  # fmt: skip
def test_luma_validates_photon_references_and_modify(
    sim: SimulatorHandle, fields: dict[str, Any], detail: str
) -> None:
    client = lumaai.LumaAI(auth_token=KEY, base_url=base_url(sim), max_retries=0)
    with pytest.raises(lumaai.BadRequestError) as caught:
        client.generations.image.create(model="photon-1", prompt="a cat", **fields)
    assert caught.value.body == {"detail": detail}


def brief_with(tmp_path: Path, style_reference: str) -> Brief:
    data = {
        "campaign": "Spring Drop",
        "brand": {"name": "Fern", "palette": ["#224422"], "style_reference": style_reference},
        "goal": "sell the spring collection",
        "audience": "gardeners",
        "channels": ["instagram"],
    }
    (path := tmp_path / "brief.yaml").write_text(yaml.safe_dump(data))
    return load_brief(path)


def test_the_brands_style_reference_guides_every_keyframe_as_style_ref(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    brief = brief_with(tmp_path, "https://cdn.example.com/brand-look.png")
    story = LocalPlanner().plan(brief).stories[0]
    spec = keyframe_spec(story, brief, "luma", "photon-flash-1", story.keyframe_prompt)
    assert run_job(image(sim), spec).mime == "image/png"

    (create,) = logged(sim, "POST")
    assert create["body"]["style_ref"] == [
        {"url": "https://cdn.example.com/brand-look.png", "weight": IMAGE_REF_WEIGHT}
    ]
    plain = brief.model_copy(update={"brand": brief.brand.model_copy(update={"style_reference": None})})
    assert keyframe_spec(story, plain, "luma", "photon-flash-1", story.keyframe_prompt).inputs == ()


def test_a_local_style_reference_is_refused_by_luma_naming_the_brief_field(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    Image.new("RGB", (32, 32), "teal").save(tmp_path / "look.png")
    brief = brief_with(tmp_path, "look.png")
    assert brief.brand.style_reference == str((tmp_path / "look.png").resolve())
    story = LocalPlanner().plan(brief).stories[0]
    spec = keyframe_spec(story, brief, "luma", "photon-flash-1", story.keyframe_prompt)
    with pytest.raises(ProviderError) as caught:
        image(sim).submit(spec)
    assert caught.value.kind is ErrorKind.invalid_input and "set brand.style_reference" in str(caught.value)
    assert sim.requests() == []

    with pytest.raises(BriefError) as missing:
        brief_with(tmp_path, "nowhere.png")
    assert missing.value.problems == ["'brand.style_reference' points to 'nowhere.png', which does not exist"]


@pytest.mark.parametrize("card", DREAM_MACHINE_VIDEO, ids=lambda card: card.model)
def test_the_ray_cards_say_what_the_installed_sdk_sends(card: Any) -> None:
    """The declaration is data now: it must still be the SDK's own contract (the request types' enums)."""
    create = get_type_hints(VideoCreateParams)
    assert card.model in literals(create["model"])
    assert card.aspects == literals(create["aspect_ratio"])
    assert card.durations_s == tuple(float(d.removesuffix("s")) for d in literals(create["duration"]))
    assert card.sizes == literals(create["resolution"]) == card.options["resolution"].choices
    assert card.sizes == literals(get_type_hints(GenerationUpscaleParams)["resolution"])  # upscale targets
    mode = card.options["mode"]
    assert (
        mode.choices == literals(get_type_hints(VideoModifyParams)["mode"]) and mode.default in mode.choices
    )


@pytest.mark.parametrize("card", LUMA.cards(Capability.image), ids=lambda card: card.model)
def test_the_photon_cards_say_what_the_installed_sdk_sends(card: Any) -> None:
    create = get_type_hints(ImageCreateParams)
    assert card.model in literals(create["model"])
    assert card.aspects == literals(create["aspect_ratio"])


# -- ray-3.2 on the Luma Agents API -------------------------------------------------------------------------------

AGENTS_SIMULATOR = LUMA.serving("ray-3.2").simulator
assert AGENTS_SIMULATOR is not None
AGENTS_PREFIX = AGENTS_SIMULATOR.prefix


def agents(sim: SimulatorHandle, **options: Any) -> LumaAgentsVideo:
    settings = {"base_url": sim.url + AGENTS_PREFIX, "api_key": AGENTS_SIMULATOR.key, "time_scale": SCALE}
    return LumaAgentsVideo(**{**settings, **options})


def ray32(sim: SimulatorHandle, **options: Any) -> LumaVideo:
    """What a user gets from `--provider luma --model ray-3.2`: the Luma adapter, routing to the Agents API."""
    return video(sim, **{"agents": agents(sim), **options})


def agents_creates(sim: SimulatorHandle) -> list[dict[str, Any]]:
    return [r for r in logged(sim, "POST", "/generations") if r["path"].startswith(AGENTS_PREFIX)]


def frame_file(
    tmp_path: Path, role: str = "keyframe", color: tuple[int, int, int] = (20, 90, 160)
) -> InputRef:
    path = tmp_path / f"{role}.png"
    Image.new("RGB", (360, 640), color).save(path)
    return InputRef(role=role, uri=path.as_uri(), sha256="0" * 64)


def test_ray_3_2_goes_to_the_agents_api_with_its_own_key_and_schema(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    start = frame_file(tmp_path).model_copy(update={"url": "https://cdn.example.com/start.png"})
    end = frame_file(tmp_path, "last_frame")
    spec = video_spec(model="ray-3.2", duration_s=10.0, width=1080, height=1920, inputs=(start, end))
    made = run_job(ray32(sim), spec)

    assert made.mime == "video/mp4" and made.duration_s == pytest.approx(10.0, abs=0.6)
    assert made.width and made.height and made.width < made.height
    (create,) = agents_creates(sim)
    headers = create["headers"]  # the key is redacted in the log: test_the_agents_key_is_its_own checks it
    assert create["status"] == 201 and headers["user-agent"].startswith("Luma/Python")  # luma-agents
    assert headers["x-stainless-retry-count"] == "0"
    body = create["body"]
    assert {k: body[k] for k in ("model", "type", "aspect_ratio")} == {
        "model": "ray-3.2", "type": "video", "aspect_ratio": "9:16"}  # fmt: skip
    assert body["video"]["duration"] == "10s" and body["video"]["resolution"] == "1080p"
    assert body["video"]["start_frame"] == {"url": "https://cdn.example.com/start.png"}  # a link as it is
    assert body["video"]["end_frame"]["media_type"] == "image/png"  # a local file inline
    assert not [r for r in sim.requests() if "/dream-machine/" in r["path"]]
    assert made.cost_usd == pytest.approx(LUMA.card("ray-3.2").price.usd * 10)


def test_a_continuing_ray_3_2_shot_extends_the_previous_generation(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    generator = ray32(sim)
    first = generator.submit(video_spec(model="ray-3.2"))
    assert first.handle == {"api": "agents"}  # journaled: a process taking the job up polls the Agents API
    wait_for(generator, first)  # a clip is extended once it is finished
    last = frame_file(tmp_path).model_copy(update={"continues": f"luma:{first.job_id}"})
    run_job(generator, video_spec(model="ray-3.2", inputs=(last,)))
    body = agents_creates(sim)[-1]["body"]
    assert body["video"]["start_frame"] == {"generation_id": first.job_id}


def test_a_ray_2_shot_after_a_ray_3_2_one_starts_from_its_last_frame_not_its_agents_id(
    sim: SimulatorHandle,
) -> None:
    agents_id = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
    last = InputRef(role="keyframe", uri="s3://bucket/last.png", url="https://cdn.example.com/last.png",
                    sha256="0" * 64, continues=f"luma:{agents_id}", continues_model="ray-3.2")  # fmt: skip
    spec = video_spec(model="ray-2", inputs=(last,))
    video(sim).submit(spec)

    (create,) = logged(sim, "POST", CREATE)
    assert create["body"]["keyframes"] == {
        "frame0": {"type": "image", "url": "https://cdn.example.com/last.png"}
    }
    assert LUMA.card("ray-2").continuity(spec) is Continuity.last_frame


def test_each_luma_api_is_ready_with_its_own_key_and_names_it_when_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUTROOM_SIMULATOR_URL", raising=False)
    monkeypatch.delenv("LUMAAI_API_KEY", raising=False)
    monkeypatch.setenv("LUMA_AGENTS_API_KEY", "luma-api-test")
    assert registry.choose(Capability.video, ["luma:ray-3.2"]).model == "ray-3.2"
    assert registry.choose(Capability.video, ["luma:ray-2"]).passed_over == ["luma: set LUMAAI_API_KEY"]

    monkeypatch.delenv("LUMA_AGENTS_API_KEY")
    monkeypatch.setenv("LUMAAI_API_KEY", "luma-test")
    assert registry.choose(Capability.video, ["luma:ray-flash-2"]).model == "ray-flash-2"
    assert registry.choose(Capability.video, ["luma:ray-3.2"]).passed_over == [
        "luma: set LUMA_AGENTS_API_KEY"
    ]


def test_a_local_image_on_local_storage_goes_to_ray_3_2_inline_and_ray_2_says_to_use_s3(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CUTROOM_SIMULATOR_URL", raising=False)
    start = tmp_path / "start.png"
    Image.new("RGB", (360, 640), (20, 90, 160)).save(start)
    asked = AssetRequest(kind=AssetKind.video, prompt="a kayak at dawn", provider="luma", image=str(start))

    check_request(asked.model_copy(update={"model": "ray-3.2"}))  # the Agents API takes it inline
    with pytest.raises(ProviderError) as refused:
        check_request(asked.model_copy(update={"model": "ray-2"}))
    assert refused.value.kind is ErrorKind.invalid_input
    assert "CUTROOM_STORAGE=s3://" in refused.value.detail


@pytest.mark.parametrize(("fault", "kind"), [("moderation", ErrorKind.moderation_input),
                                             ("moderation_output", ErrorKind.moderation_output),
                                             ("failed", ErrorKind.generation_failed)])  # fmt: skip
def test_agents_failure_codes_are_told_apart(sim: SimulatorHandle, fault: str, kind: ErrorKind) -> None:
    sim.configure(fault_rate=1.0, faults=[fault])
    with pytest.raises(JobFailed) as failed:
        run_job(ray32(sim), video_spec(model="ray-3.2"))
    assert failed.value.kind is kind


def test_the_agents_key_is_its_own(sim: SimulatorHandle) -> None:
    """A Dream Machine key is refused by the Agents API: 401 is auth, and nothing is paid."""
    with pytest.raises(ProviderError) as refused:
        ray32(sim, agents=agents(sim, api_key=KEY)).submit(video_spec(model="ray-3.2"))
    assert refused.value.kind is ErrorKind.auth
    assert sim.jobs() == []


def test_without_its_key_ray_3_2_names_the_agents_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUTROOM_SIMULATOR_URL", raising=False)
    monkeypatch.delenv("LUMA_AGENTS_API_KEY", raising=False)
    with pytest.raises(ProviderError) as missing:
        LumaAgentsVideo().submit(video_spec(model="ray-3.2"))
    assert missing.value.kind is ErrorKind.not_configured and "LUMA_AGENTS_API_KEY" in missing.value.detail


def test_the_agents_base_url_has_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUTROOM_SIMULATOR_URL", raising=False)
    monkeypatch.setenv("LUMA_AGENTS_BASE_URL", "https://agents.example.test/v1")
    monkeypatch.setenv("LUMAAI_BASE_URL", "https://dream.example.test/v1")
    assert LumaAgentsVideo().base_url == "https://agents.example.test/v1"
    monkeypatch.delenv("LUMA_AGENTS_BASE_URL")
    assert LumaAgentsVideo().base_url == "https://agents.lumalabs.ai/v1"


@pytest.mark.parametrize(
    "case", ["a 10 s loop", "a 9 s clip", "4k", "a Dream Machine model", "an agents job id"]
)
def test_what_ray_3_2_cannot_make_is_refused_before_any_request(sim: SimulatorHandle, case: str) -> None:
    specs = {
        "a 10 s loop": video_spec(model="ray-3.2", duration_s=10.0, loop=True),
        "a 9 s clip": video_spec(model="ray-3.2", duration_s=9.0),
        "4k": video_spec(model="ray-3.2", options={"resolution": "4k"}),
        "a Dream Machine model": video_spec(model="ray-2"),
    }
    if case == "an agents job id":
        job = JobRef(provider="luma", job_id="../credits", spec_key="k", handle={"api": "agents"})
        with pytest.raises(ProviderError) as refused:
            ray32(sim).poll(job)
    else:
        with pytest.raises(ProviderError) as refused:
            agents(sim).submit(specs[case])
    assert refused.value.kind is ErrorKind.invalid_input
    assert [r for r in sim.requests() if r["path"].startswith(AGENTS_PREFIX)] == []


def test_the_agents_simulator_answers_in_its_own_shapes(sim: SimulatorHandle) -> None:
    url = sim.url + AGENTS_PREFIX + "/generations"
    auth = {"Authorization": f"Bearer {AGENTS_SIMULATOR.key}"}
    assert (
        httpx.post(url, json={"prompt": "x"}, headers={"Authorization": f"Bearer {KEY}"}).status_code == 401
    )
    bad = httpx.post(url, headers=auth, json={"prompt": "x", "model": "ray-3.2", "type": "video",
                                              "video": {"duration": "9s"}})  # fmt: skip
    assert bad.status_code == 400 and "duration" in bad.json()["detail"]
    inline = {"data": "bm90IGFuIGltYWdl", "media_type": "image/png"}
    broken = httpx.post(url, headers=auth, json={"prompt": "x", "model": "ray-3.2", "type": "video",
                                                 "video": {"start_frame": inline}})  # fmt: skip
    assert broken.status_code == 422
    missing = httpx.get(f"{url}/{UNKNOWN_ID}", headers=auth)
    assert missing.status_code == 404 and missing.json() == {"detail": "Generation not found"}
    assert sim.jobs() == []
