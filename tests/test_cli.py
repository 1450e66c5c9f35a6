"""The CLI as a user meets it: every mistake ends in one clear line and a hint, never a traceback."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers import cutroom

GOOD = {
    "campaign": "Spring Drop",
    "brand": {"name": "Fern", "palette": ["#224422", "#F0E68C"]},
    "goal": "sell the spring collection",
    "audience": "gardeners",
    "channels": ["instagram"],
}


def write(tmp_path, data, name="brief.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if name.endswith(".yaml") else json.dumps(data))
    return path


def assert_clean_error(result, code, *needles):
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert "hint:" in result.stderr


def test_bad_brief_names_every_field_and_generates_nothing(tmp_path):
    brief = write(
        tmp_path,
        {**GOOD, "channels": ["myspace"], "budget_usd": -1, "brand": {"name": "Fern", "palette": ["green"]}},
    )
    result = cutroom("run", str(brief), "--out", str(tmp_path / "out"))
    assert_clean_error(
        result,
        2,
        "brief.yaml is not a usable brief",
        "'channels[1]' is 'myspace'",
        "'budget_usd' is -1",
        "'brand.palette'",
    )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_missing_brief_file(tmp_path):
    assert_clean_error(cutroom("run", str(tmp_path / "nope.yaml")), 2, "no brief file at")


def test_unknown_provider_in_the_brief(tmp_path):
    brief = write(tmp_path, {**GOOD, "providers": {"video": ["lumaa"]}})
    assert_clean_error(
        cutroom("plan", str(brief)),
        2,
        "'providers.video' names 'lumaa'",
        "known video providers:",
        "luma",
        "runway",
    )


def test_out_that_is_a_file(tmp_path):
    brief = write(tmp_path, GOOD)
    (tmp_path / "taken").write_text("x")
    assert_clean_error(
        cutroom("run", str(brief), "--out", str(tmp_path / "taken")), 2, "is a file, not a folder"
    )


def test_a_bucket_it_cannot_reach_is_named_before_anything_runs(tmp_path):
    brief = write(tmp_path, GOOD)
    closed = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }
    assert_clean_error(
        cutroom("run", str(brief), "--storage", "s3://bucket/campaigns", cwd=tmp_path, env=closed),
        2,
        "cannot reach the bucket of s3://bucket/campaigns",
        "AWS_ENDPOINT_URL",
    )
    assert not (tmp_path / "s3:").exists() and not (tmp_path / "cutroom-out").exists()


def test_an_s3_location_without_a_bucket_is_refused(tmp_path):
    brief = write(tmp_path, GOOD)
    assert_clean_error(cutroom("run", str(brief), "--out", "s3://", cwd=tmp_path), 2, "needs a bucket")


def test_a_bad_campaign_id_is_blamed_on_the_flag_not_the_brief(tmp_path):
    brief = write(tmp_path, GOOD)
    result = cutroom("plan", str(brief), "--campaign-id", "Not OK!")
    assert_clean_error(result, 2, "--campaign-id 'Not OK!' is not a folder-safe id")
    assert "brief.yaml" not in result.stderr


def test_a_brief_that_is_not_utf8_or_is_a_folder_is_a_clean_error(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(yaml.safe_dump({**GOOD, "goal": "sell crème"}, allow_unicode=True).encode("latin-1"))
    assert_clean_error(cutroom("plan", str(latin)), 2, "latin.yaml is not UTF-8 text")
    assert_clean_error(cutroom("plan", str(tmp_path)), 2, "is a folder, not a brief file")


def test_a_stray_file_never_goes_to_a_vendor(simulator, tmp_path):
    """--style-ref /etc/passwd went out as a data URI: a local input must be media of its role's kind."""
    simulator.reset(latency_scale=0.01)
    env = {"CUTROOM_OUT": str(tmp_path / "work"), "CUTROOM_SIMULATOR_URL": simulator.url}
    for flag in ("--style-ref", "--reference"):
        result = cutroom(
            "generate", "image", "--provider", "runway", "--prompt", "x", flag, "/etc/passwd", env=env
        )
        assert_clean_error(result, 2, "'passwd' is not image media")
    assert simulator.requests() == []


def test_a_vendor_refusal_in_generate_is_one_paragraph_without_prefect_lines(
    prefect_server, simulator, tmp_path
):
    simulator.reset(latency_scale=0.01, fault_rate=1.0, faults=["moderation"])
    result = cutroom(
        "generate", "image", "--provider", "runway", "--prompt", "a kite", "--out", str(tmp_path / "a.png"),
        env={"CUTROOM_OUT": str(tmp_path / "work"), "CUTROOM_SIMULATOR_URL": simulator.url},
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    assert "| ERROR" not in result.stderr + result.stdout and "prefect" not in result.stderr.lower()
    assert "moderation_input" in result.stderr and len(result.stderr.splitlines()) <= 3


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["video", "--prompt", "x", "--provider", "nobody"], "'nobody' cannot make video; known: fal, freepik, google, kling"),
        (["image", "--prompt", "  "], "--prompt is empty"),
        (
            ["video", "--prompt", "x", "--image", "/nonexistent.png"],
            "--image /nonexistent.png does not exist",
        ),
        (
            ["image", "--prompt", "x", "--style-ref", "/nonexistent.png"],
            "--style-ref /nonexistent.png does not exist",
        ),
        (
            ["video", "--prompt", "x", "--reference", "https://cdn.example.com/a.png"],
            "--reference guides a new image; it does not go with `generate video`",
        ),
        (
            ["image", "--prompt", "x", "--operation", "modify",
             "--source", "luma:4f2c6a1e-0b7d-4c3e-9a51-2d8e7f6b1c90", "--character-ref", "https://cdn.example.com/face.png"],
            "--character-ref guides a new image; it does not go with --operation modify",
        ),
        (
            ["video", "--prompt", "x", "--operation", "upscale", "--source", "luma:../../x"],
            "--source: '../../x' is not a luma job id",
        ),
        (
            ["image", "--prompt", "x", "--model", "photon-1", "--provider", "luma", "-o", "mode=wild"],
            "option mode (its options: weight)",
        ),
    ],
)  # fmt: skip
def test_generate_mistakes(args, needle):
    assert_clean_error(cutroom("generate", *args), 2, needle)


def test_simulate_names_an_unknown_fault():
    assert_clean_error(cutroom("simulate", "--faults", "429,gremlins"), 2, "unknown fault gremlins")


def test_generate_rejects_unknown_choices():
    result = cutroom("generate", "music", "--prompt", "x")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'music' is not one of" in result.stderr


def test_plan_prints_the_prd_stories_and_estimate_without_generating(tmp_path, example_brief):
    result = cutroom("plan", str(example_brief), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for story_id in ("s01-instagram-video", "s02-tiktok-video", "s05-email-email"):
        assert story_id in result.stdout
    assert "Estimate $0.00 at most, within the $25.00 budget." in result.stdout
    assert "campaign PRD" in result.stdout and "KPIs" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_providers_lists_every_capability():
    result = cutroom("providers")
    assert result.returncode == 0
    for capability in ("planner", "image", "video", "speech", "judge"):
        assert capability in result.stdout


@pytest.mark.parametrize(
    ("kind", "args", "suffix", "size"),
    [
        ("image", ["--aspect", "9:16", "--headline", "Hello"], ".png", (720, 1280)),
        ("video", ["--aspect", "1:1", "--duration", "2", "--camera", "pan_left"], ".mp4", (1080, 1080)),
        ("speech", ["--voice", "en-gb"], ".wav", None),
    ],
)
def test_generate_makes_one_asset(prefect_server, tmp_path, kind, args, suffix, size):
    from PIL import Image

    from cutroom.media import probe

    target = tmp_path / f"asset{suffix}"
    result = cutroom(
        "generate", kind, "--prompt", "A lighthouse at dawn", *args, "--out", str(target),
        env={"CUTROOM_OUT": str(tmp_path / "work")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{kind}: {target}" in result.stdout
    if kind == "image":
        assert Image.open(target).size == size
    elif kind == "video":
        info = probe(target)
        assert (info.width, info.height) == size and abs(info.duration_s - 2) < 0.2
    else:
        assert probe(target).has_audio and probe(target).duration_s > 0.5


@pytest.mark.parametrize("given_in", ["environment", ".env"])
def test_generate_keeps_its_work_where_campaigns_go(prefect_server, tmp_path, monkeypatch, given_in):
    """CUTROOM_STORAGE, from the environment or a .env file, is where `generate` makes and keeps its asset."""
    monkeypatch.delenv("CUTROOM_OUT", raising=False)
    monkeypatch.delenv("CUTROOM_STORAGE", raising=False)
    storage = tmp_path / "storage"
    env = {"CUTROOM_STORAGE": str(storage)} if given_in == "environment" else {}
    if given_in == ".env":
        (tmp_path / ".env").write_text(f"CUTROOM_STORAGE={storage}\n")
    target = tmp_path / "lighthouse.png"
    result = cutroom(
        "generate", "image", "--prompt", "A lighthouse at dawn", "--out", str(target), cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    (kept,) = (storage / "campaigns" / "adhoc").rglob("*.png")
    assert kept.read_bytes() == target.read_bytes()
    assert not (tmp_path / "cutroom-out").exists()


def test_generate_on_a_vendor_model_through_the_simulator(prefect_server, simulator, tmp_path):
    from cutroom.media import probe

    simulator.reset(latency_scale=0.01)
    target = tmp_path / "clip.mp4"
    result = cutroom(
        "generate", "video", "--provider", "runway", "--model", "gen4.5", "--prompt", "A lighthouse at dawn",
        "--aspect", "16:9", "--duration", "5", "--out", str(target),
        env={"CUTROOM_OUT": str(tmp_path / "work"), "CUTROOM_SIMULATOR_URL": simulator.url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "runway/gen4.5" in result.stdout
    info = probe(target)
    assert (info.width, info.height) == (1280, 720) and abs(info.duration_s - 5) < 0.3
    (create,) = [r for r in simulator.requests() if r["method"] == "POST"]
    assert create["path"] == "/runway/v1/image_to_video" and create["body"]["model"] == "gen4.5"


def test_generate_extends_and_upscales_an_earlier_luma_clip(prefect_server, simulator, tmp_path):
    import re

    from cutroom.media import probe

    simulator.reset(latency_scale=0.01)
    env = {"CUTROOM_OUT": str(tmp_path / "work"), "CUTROOM_SIMULATOR_URL": simulator.url}
    common = ["--provider", "luma", "--model", "ray-flash-2", "--aspect", "16:9"]
    first = cutroom("generate", "video", "--prompt", "A harbour at dawn", "--image", "https://cdn.example.com/k.png",
                    *common, "--out", str(tmp_path / "a.mp4"), env=env)  # fmt: skip
    assert first.returncode == 0, first.stderr
    job = re.search(r"job (luma:[0-9a-f-]+)", first.stdout).group(1)

    extended = cutroom("generate", "video", "--prompt", "The boats sail out", "--image", job, *common,
                       "--out", str(tmp_path / "b.mp4"), env=env)  # fmt: skip
    upscaled = cutroom("generate", "video", "--prompt", "sharper", "--operation", "upscale", "--source", job,
                       "--provider", "luma", "--out", str(tmp_path / "c.mp4"), env=env)  # fmt: skip
    assert extended.returncode == 0 and upscaled.returncode == 0, extended.stderr + upscaled.stderr
    creates = [r for r in simulator.requests() if r["method"] == "POST"]
    assert creates[1]["body"]["keyframes"]["frame0"] == {
        "type": "generation",
        "id": job.removeprefix("luma:"),
    }
    assert creates[2]["path"].endswith(f"/generations/{job.removeprefix('luma:')}/upscale")
    assert probe(tmp_path / "c.mp4").height > probe(tmp_path / "a.mp4").height


def test_a_luma_clip_without_a_start_image_starts_from_a_luma_keyframe(prefect_server, simulator, tmp_path):
    """Luma fetches only links: the keyframe a clip starts from is made on Luma, whose own link the clip uses
    (a local keyframe would be a file Luma cannot fetch)."""
    simulator.reset(latency_scale=0.01)
    env = {"CUTROOM_OUT": str(tmp_path / "work"), "CUTROOM_SIMULATOR_URL": simulator.url}
    made = cutroom("generate", "video", "--provider", "luma", "--model", "ray-flash-2", "--prompt", "A harbour",
                   "--out", str(tmp_path / "a.mp4"), env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    image, clip = [r for r in simulator.requests() if r["method"] == "POST"]
    assert image["path"].endswith("/generations/image") and clip["path"].endswith("/generations/video")
    assert clip["body"]["keyframes"]["frame0"]["url"].startswith(simulator.url)


def test_operation_without_source_is_refused():
    assert_clean_error(
        cutroom("generate", "video", "--prompt", "x", "--operation", "upscale"),
        2,
        "--operation and --source go together",
    )


def test_generate_retimes_and_upscales_a_clip_on_runway(prefect_server, simulator, tmp_path):
    """No --model: the operation picks Runway's model for it (enhance_frame_rate, magnific)."""
    from cutroom.assets import AssetKind, AssetSpec, InputRef
    from cutroom.media import probe
    from providers.local.video import LocalAnimatic
    from tests.test_local_video import make_keyframe

    simulator.reset(latency_scale=0.01)
    keyframe = make_keyframe(tmp_path / "key.png", (320, 180))
    clip = LocalAnimatic().render(
        AssetSpec(
            kind=AssetKind.video, provider="local", model="animatic-1", prompt="source", width=320, height=180,
            duration_s=2.0, fps=12, inputs=(InputRef(role="keyframe", uri=keyframe.as_uri(), sha256="x"),),
        )
    )  # fmt: skip
    (source := tmp_path / "source.mp4").write_bytes(clip.data)
    env = {"CUTROOM_OUT": str(tmp_path / "work"), "CUTROOM_SIMULATOR_URL": simulator.url}
    common = ["generate", "video", "--provider", "runway", "--prompt", "the same, smoother",
              "--source", str(source)]  # fmt: skip
    retimed = cutroom(*common, "--operation", "enhance_frame_rate", "--fps", "60", "--out", str(tmp_path / "60.mp4"),
                      env=env)  # fmt: skip
    upscaled = cutroom(*common, "--operation", "upscale", "-o", "resolution=720p", "--out", str(tmp_path / "720p.mp4"),
                       env=env)  # fmt: skip
    assert retimed.returncode == 0 and upscaled.returncode == 0, retimed.stderr + upscaled.stderr
    assert "runway/enhance_frame_rate" in retimed.stdout
    assert "runway/magnific_video_upscaler_creative" in upscaled.stdout
    assert probe(tmp_path / "60.mp4").fps == 60
    assert (probe(tmp_path / "720p.mp4").width, probe(tmp_path / "720p.mp4").height) == (1280, 720)
    creates = [r for r in simulator.requests() if r["method"] == "POST" and "/v1/video_upscale" in r["path"]]
    assert [{k: v for k, v in c["body"].items() if k != "videoUri"} for c in creates] == [
        {"model": "enhance_frame_rate", "targetFramerate": "60"},
        {"model": "magnific_video_upscaler_creative", "resolution": "720p"},
    ]


def test_generate_guides_a_luma_image_by_references_then_modifies_it(prefect_server, simulator, tmp_path):
    import re

    simulator.reset(latency_scale=0.01)
    env = {"CUTROOM_OUT": str(tmp_path / "work"), "CUTROOM_SIMULATOR_URL": simulator.url}
    cdn = "https://cdn.example.com"
    first = cutroom(
        "generate", "image", "--provider", "luma", "--prompt", "A harbour at dawn", "--reference", f"{cdn}/boat.png",
        "--style-ref", f"{cdn}/look-1.png", "--style-ref", f"{cdn}/look-2.png", "--character-ref", f"{cdn}/face.png",
        "--out", str(tmp_path / "a.png"), env=env,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    job = re.search(r"job luma:([0-9a-f-]+)", first.stdout).group(1)
    modified = cutroom(
        "generate", "image", "--provider", "luma", "--prompt", "The harbour at night", "--operation", "modify",
        "--source", f"luma:{job}", "--option", "weight=0.4", "--out", str(tmp_path / "b.png"), env=env,
    )  # fmt: skip
    assert modified.returncode == 0, modified.stderr
    guided, modify = [r["body"] for r in simulator.requests() if r["path"].endswith("/generations/image")]
    assert guided["image_ref"] == [{"url": f"{cdn}/boat.png", "weight": 0.85}]
    assert guided["style_ref"] == [
        {"url": f"{cdn}/look-1.png", "weight": 0.85},
        {"url": f"{cdn}/look-2.png", "weight": 0.85},
    ]
    assert guided["character_ref"] == {"identity0": {"images": [f"{cdn}/face.png"]}}
    assert modify["modify_image_ref"]["weight"] == 0.4
    assert modify["modify_image_ref"]["url"].endswith(f"/_media/{job}.png")
    assert (tmp_path / "b.png").read_bytes() != (tmp_path / "a.png").read_bytes()
