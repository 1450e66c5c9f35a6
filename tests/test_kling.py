"""The Kling adapter (plain httpx, JWT auth) against simulator/kling.py over loopback HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, Continuity, InputRef
from cutroom.channels import SIZES, Aspect
from providers import declarations, kling
from providers.errors import ErrorKind, JobFailed, ProviderError
from providers.polling import PollSchedule, run_job, wait_for
from providers.protocol import JobRef, JobState
from tests.vendor_helpers import Sent, on_simulator, refused

FAST = {"latency_scale": 0.01, "latency_jitter": 0.0}
SCHEDULE = PollSchedule(expected_s=1.0, min_interval_s=0.05, max_interval_s=0.2, timeout_s=30)
KLING = declarations.vendor("kling")
PREFIX = KLING.simulator.prefix  # type: ignore[union-attr]


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    simulator.reset(**FAST)
    yield simulator


def adapter(sim: Any, model: str | None = None, **options: Any) -> kling.KlingVideo:
    return on_simulator(kling.KlingVideo, sim, model, scale=FAST["latency_scale"], **options)


def frame(
    path: Path, role: str = "keyframe", size: tuple[int, int] = (720, 1280), fmt: str = "PNG"
) -> InputRef:
    Image.new("RGB", size, (30, 90, 160)).save(path, format=fmt)
    return InputRef(role=role, uri=path.as_uri(), sha256="0" * 64)


def clip_spec(model: str = "kling-v2-5-turbo", aspect: Aspect = Aspect.vertical, **changes: Any) -> AssetSpec:
    fields: dict[str, Any] = {
        "kind": AssetKind.video, "provider": "kling", "model": model, "prompt": "kayaks glide past sea cliffs",
        "aspect": aspect, "width": SIZES[aspect][0], "height": SIZES[aspect][1], "duration_s": 5.0,
    }  # fmt: skip
    return AssetSpec(**{**fields, **changes})


def creates(sim: Any) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["method"] == "POST" and "/v1/videos/" in r["path"]]


def claims(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, str]:
    head, body, signature = token.split(".")
    decode = lambda part: base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))  # noqa: E731
    return json.loads(decode(head)), json.loads(decode(body)), decode(signature), f"{head}.{body}"


def add_account(sim: Any, access: str, secret: str) -> None:
    httpx.post(
        f"{sim.url}{PREFIX}/_sim/accounts", json={"access_key": access, "secret_key": secret}
    ).raise_for_status()


# -- auth -----------------------------------------------------------------------------------------------------------


def test_the_token_is_kling_s_hs256_jwt_signed_with_the_secret_key_and_renewed_before_it_lapses():
    now = [1_700_000_000.0]
    generator = kling.KlingVideo(
        api_key="ak-1", secret_key="sk-1", base_url="http://kling.invalid", clock=lambda: now[0]
    )
    token = generator.token()
    head, payload, signature, signed = claims(token)
    assert head == {"alg": "HS256", "typ": "JWT"}
    assert payload == {"iss": "ak-1", "exp": 1_700_001_800, "nbf": 1_699_999_995}
    assert signature == hmac.new(b"sk-1", signed.encode(), hashlib.sha256).digest()
    now[0] += 1000  # 800 s left: still good
    assert generator.token() == token
    now[0] += 600  # 200 s left: a new one before it runs out
    renewed = generator.token()
    assert renewed != token and claims(renewed)[1]["exp"] == 1_700_003_400


def test_distinct_access_and_secret_keys_from_the_environment_make_a_clip(sim, monkeypatch, tmp_path):
    add_account(sim, "ak-distinct", "sk-distinct")
    monkeypatch.setenv("KLING_ACCESS_KEY", "ak-distinct")
    monkeypatch.setenv("KLING_SECRET_KEY", "sk-distinct")
    generator = kling.KlingVideo(base_url=sim.url + PREFIX, time_scale=FAST["latency_scale"])
    made = run_job(generator, clip_spec(inputs=(frame(tmp_path / "start.png"),)), schedule=SCHEDULE)
    assert made.mime == "video/mp4" and made.width < made.height
    logged = creates(sim)[0]["headers"]["authorization"]
    assert logged == "Bearer …"  # the log keeps the scheme, never the token


@pytest.mark.parametrize(
    ("keys", "clock_shift", "code"),
    [
        (("sk-swapped", "ak-swapped"), 0, "code 1000"),  # the keys the wrong way round
        (("ak-swapped", "sk-swapped"), -3600, "code 1004"),  # a token that expired
        (("ak-swapped", "sk-swapped"), +600, "code 1003"),  # one not valid yet
    ],
)
def test_a_token_kling_refuses_is_an_auth_error_and_nothing_is_paid(sim, tmp_path, keys, clock_shift, code):
    add_account(sim, "ak-swapped", "sk-swapped")
    access, secret = keys
    generator = adapter(sim, api_key=access, secret_key=secret, clock=lambda: time.time() + clock_shift)
    error = refused(lambda: generator.submit(clip_spec(inputs=(frame(tmp_path / "s.png"),))), ErrorKind.auth)
    assert code in str(error) and "sk-swapped" not in str(error)
    assert sim.jobs() == []


def test_missing_keys_say_which_variables_to_set(monkeypatch):
    monkeypatch.delenv("KLING_ACCESS_KEY", raising=False)
    monkeypatch.delenv("KLING_SECRET_KEY", raising=False)
    error = refused(kling.KlingVideo(base_url="http://kling.invalid").token, ErrorKind.not_configured)
    assert "KLING_ACCESS_KEY and KLING_SECRET_KEY" in str(error)


# -- request shapes --------------------------------------------------------------------------------------------------


def test_a_local_start_frame_goes_as_raw_base64_and_the_clip_keeps_its_shape(sim, tmp_path):
    start = frame(tmp_path / "start.jpg", fmt="JPEG")
    made = run_job(adapter(sim), clip_spec(inputs=(start,), options={"mode": "pro"}), schedule=SCHEDULE)
    (create,) = creates(sim)
    body = create["body"]
    assert create["path"] == f"{PREFIX}/v1/videos/image2video"
    assert body["model_name"] == "kling-v2-5-turbo" and body["mode"] == "pro" and body["duration"] == "5"
    assert base64.b64decode(body["image"]) == Path(tmp_path / "start.jpg").read_bytes()  # no data: prefix
    assert "aspect_ratio" not in body and "image_tail" not in body
    assert made.width / made.height == pytest.approx(720 / 1280, rel=0.02)
    assert made.duration_s == pytest.approx(5.0, abs=0.5)


def test_a_start_frame_with_a_link_is_sent_as_the_link(sim, tmp_path):
    start = frame(tmp_path / "start.png").model_copy(update={"url": "https://cdn.example.com/start.png"})
    adapter(sim).submit(clip_spec(inputs=(start,)))
    assert creates(sim)[0]["body"]["image"] == "https://cdn.example.com/start.png"


def test_without_a_frame_the_clip_is_text_to_video_in_the_asked_aspect(sim):
    made = run_job(
        adapter(sim, "kling-v2-1-master"), clip_spec("kling-v2-1-master", duration_s=10.0), schedule=SCHEDULE
    )
    (create,) = creates(sim)
    assert create["path"] == f"{PREFIX}/v1/videos/text2video"
    assert create["body"]["aspect_ratio"] == "9:16" and create["body"]["duration"] == "10"
    assert "mode" not in create["body"]  # the masters have no mode
    assert made.width < made.height and made.duration_s == pytest.approx(10.0, abs=0.5)


def test_an_end_frame_goes_as_image_tail_in_pro_mode(sim, tmp_path):
    inputs = (frame(tmp_path / "a.png"), frame(tmp_path / "b.png", role="last_frame"))
    run_job(
        adapter(sim, "kling-v2-1"),
        clip_spec("kling-v2-1", inputs=inputs, options={"mode": "pro"}),
        schedule=SCHEDULE,
    )
    body = creates(sim)[0]["body"]
    assert body["mode"] == "pro" and body["image"] and body["image_tail"]


@pytest.mark.parametrize(
    ("model", "changes", "said"),
    [
        ("kling-v2-1", {"options": {"mode": "std"}, "inputs": "start+end"}, "mode pro only"),
        ("kling-v2-1-master", {"inputs": "start+end"}, "last_frame"),
        ("kling-v2-1", {}, "without a keyframe"),  # image-to-video only
        ("kling-v2-5-turbo", {"inputs": "tiny"}, "300 px"),
        ("kling-v2-5-turbo", {"inputs": "two starts"}, "one start frame"),
        ("kling-v2-1-master", {"options": {"mode": "pro"}}, "option mode"),
    ],
)
def test_what_kling_cannot_make_is_refused_before_any_request(sim, tmp_path, model, changes, said):
    inputs = {
        "start+end": (frame(tmp_path / "a.png"), frame(tmp_path / "b.png", role="last_frame")),
        "tiny": (frame(tmp_path / "t.png", size=(200, 300)),),
        "two starts": (frame(tmp_path / "a.png"), frame(tmp_path / "c.png", role="first_frame")),
    }
    changes = {**changes, "inputs": inputs.get(changes.get("inputs", ""), ())}
    error = refused(lambda: adapter(sim, model).submit(clip_spec(model, **changes)), ErrorKind.invalid_input)
    assert said in str(error)
    assert creates(sim) == []


def test_a_webp_start_frame_is_sent_as_png(sim, tmp_path):
    adapter(sim).submit(clip_spec(inputs=(frame(tmp_path / "start.webp", fmt="WEBP"),)))
    sent = base64.b64decode(creates(sim)[0]["body"]["image"])
    assert Image.open(io.BytesIO(sent)).format == "PNG"


def test_a_continuing_shot_starts_from_the_previous_clip_s_last_frame(sim, tmp_path):
    first = run_job(adapter(sim), clip_spec(inputs=(frame(tmp_path / "a.png"),)), schedule=SCHEDULE)
    previous = creates(sim)[0]
    last = frame(tmp_path / "last.png").model_copy(update={"continues": "kling:previous-task-id"})
    spec = clip_spec(inputs=(last,))
    card = KLING.card(spec.model)
    assert not card.chains and card.continuity(spec) is Continuity.last_frame
    run_job(adapter(sim), spec, schedule=SCHEDULE)
    follow = creates(sim)[-1]
    assert follow["path"].endswith("/image2video") and follow is not previous and first.data
    assert base64.b64decode(follow["body"]["image"]) == (tmp_path / "last.png").read_bytes()


def test_a_callback_url_is_sent_when_configured_and_kling_s_posts_are_read_as_news(sim, tmp_path):
    sent = Sent()
    generator = adapter(sim, sent=sent, callback_url="http://127.0.0.1:9/kling-news")
    generator.submit(clip_spec(inputs=(frame(tmp_path / "a.png"),)))
    assert json.loads(sent.requests[-1].content)["callback_url"] == "http://127.0.0.1:9/kling-news"
    news = kling.callback_news({"task_id": "abc12345", "task_status": "succeed", "task_result": {}})
    assert news is not None and news.job_id == "abc12345" and news.ended
    assert not kling.callback_news({"task_id": "abc12345", "task_status": "processing"}).ended  # type: ignore[union-attr]
    assert kling.callback_news({"id": "x", "state": "completed"}) is None  # another vendor's post


# -- states and errors -----------------------------------------------------------------------------------------------


def test_states_run_submitted_processing_succeed_and_a_resumed_process_finds_a_text_task(sim):
    sim.configure(latency_scale=0.05)
    generator = adapter(sim, "kling-v2-5-turbo")
    job = generator.submit(clip_spec())
    assert job.handle == {"endpoint": "text2video"}
    assert generator.poll(job).state is JobState.PENDING
    # Another process re-attaches from the journal: the id and handle only.
    resumed = JobRef(provider="kling", job_id=job.job_id, spec_key=job.spec_key, handle=job.handle)
    made = wait_for(adapter(sim), resumed, schedule=SCHEDULE)
    assert made.mime == "video/mp4"


@pytest.mark.parametrize(("fault", "kind"), [("failed", ErrorKind.generation_failed),
                                             ("moderation_output", ErrorKind.moderation_output)])  # fmt: skip
def test_a_failed_task_says_why(sim, tmp_path, fault, kind):
    sim.configure(fault_rate=1.0, faults=[fault])
    with pytest.raises(JobFailed) as failed:
        run_job(adapter(sim), clip_spec(inputs=(frame(tmp_path / "a.png"),)), schedule=SCHEDULE)
    assert failed.value.kind is kind


def test_a_refused_prompt_is_answered_at_create_with_code_1301(sim):
    sim.configure(fault_rate=1.0, faults=["moderation"])
    error = refused(lambda: adapter(sim).submit(clip_spec()), ErrorKind.moderation_input)
    assert "code 1301" in str(error) and sim.jobs() == []


@pytest.mark.parametrize(
    ("limits", "kind", "code"),
    [({"pack_depleted": True}, ErrorKind.insufficient_credits, "code 1102"),
     ({"concurrency": 0}, ErrorKind.rate_limited, "code 1303")],
)  # fmt: skip
def test_kling_s_429s_are_read_by_their_code(sim, limits, kind, code):
    httpx.post(f"{sim.url}{PREFIX}/_sim/limits", json=limits).raise_for_status()
    error = refused(lambda: adapter(sim).submit(clip_spec()), kind)
    assert code in str(error) and error.kind.transient is (kind is ErrorKind.rate_limited)


def test_every_code_of_kling_s_table_has_its_kind():
    table = {1000: "auth", 1004: "auth", 1100: "auth", 1101: "insufficient_credits", 1102: "insufficient_credits",
             1103: "invalid_input", 1201: "invalid_input", 1203: "not_found", 1300: "invalid_input",
             1301: "moderation_input", 1302: "rate_limited", 1303: "rate_limited", 1304: "auth",
             5000: "generation_failed", 5002: "generation_failed"}  # fmt: skip
    assert {code: str(kling.code_kind(code)) for code in table} == table
    assert kling.code_kind(0) is None and kling.code_kind("1301") is None


def test_a_body_kling_refuses_is_invalid_input_in_its_envelope(sim):
    generator = adapter(sim)
    body = {"model_name": "kling-v2-1", "prompt": "waves", "duration": "5"}  # v2.1 does no text-to-video
    with pytest.raises(ProviderError) as error, generator.calling("create"):
        generator.request("POST", "/v1/videos/text2video", json=body)
    assert error.value.kind is ErrorKind.invalid_input and "code 1201" in str(error.value)
    answer = creates(sim)[0]
    assert answer["status"] == 400 and sim.jobs() == []
