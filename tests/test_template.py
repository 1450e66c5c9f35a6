"""Template renders as a user meets them: the offline stand-in composes the copy over the picture with the voice;
a story's template is rendered once on Creatomate from presigned links and a rerun pays nothing; on local storage
Creatomate, which fetches its inputs, is refused in one sentence before anything is paid."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from cutroom.assets import Asset, AssetKind, AssetSpec, InputRef, Style
from cutroom.brief import parse_brief
from cutroom.capabilities import Capability
from cutroom.ledger import EntryState, ledger_for
from cutroom.lineup import Pick
from cutroom.manifest import StoryResult, StoryStatus
from cutroom.media import probe, run_ffmpeg
from cutroom.plan import Copy, Story
from cutroom.storage import S3Storage, asset_key, sha256_bytes, sha256_file
from providers import registry
from providers.errors import ErrorKind, ProviderError
from providers.local.template import LocalTemplate
from tasks.template import render_story_template, template_spec

pytest_plugins = ["tests.simulator_fixture", "tests.s3_fixture"]

VOICE_S = 2.4
BACKGROUND = (30, 120, 200)
BRIEF = parse_brief(
    {
        "campaign": "Template Renders",
        "brand": {"name": "Osprey", "palette": ["#E11D48", "#FDE68A"]},
        "goal": "sell sea kayak tours",
        "audience": "weekend adventurers",
        "channels": ["x"],
    }
)
STORY = Story(
    id="s1",
    title="Dawn paddle",
    type="video",
    channel="x",
    objective="bookings",
    copy=Copy(
        headline="Paddle into the sunrise", body="Small groups, calm water, expert guides", cta="Book now"
    ),
    keyframe_prompt="a kayak at dawn",
)
#: The Creatomate simulator's stock 16:9 template.
TEMPLATE_ID = "5b1c0d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A flat-colour keyframe, a short clip and a voice of VOICE_S seconds, as files."""
    folder = tmp_path_factory.mktemp("template-media")
    image, clip, voice = folder / "keyframe.png", folder / "clip.mp4", folder / "voice.wav"
    Image.new("RGB", (640, 360), BACKGROUND).save(image)
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x180:rate=24:duration=1.5", "-pix_fmt", "yuv420p",
                "-c:v", "libx264", "-preset", "ultrafast", str(clip)], what="making a test clip")  # fmt: skip
    with wave.open(str(voice), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(bytes(2 * int(16000 * VOICE_S)))
    return {"image": image, "clip": clip, "voice": voice}


def ref(role: str, path: Path) -> InputRef:
    return InputRef(role=role, uri=path.as_uri(), sha256=sha256_file(path))


def test_the_stand_in_lasts_as_long_as_the_voice_and_shows_the_headline_over_the_picture(media, tmp_path):
    spec = AssetSpec(
        kind=AssetKind.template, provider="local", model="ffmpeg-template-1", prompt="Paddle into the sunrise",
        aspect="16:9", width=1280, height=720, style=Style(brand="Osprey", palette=("#E11D48", "#FDE68A")),
        inputs=(ref("image", media["image"]), ref("voice", media["voice"])), options={"cta": "Book now"},
    )  # fmt: skip
    made = LocalTemplate().render(spec)

    assert made.mime == "video/mp4" and made.duration_s == pytest.approx(VOICE_S, abs=0.1)
    render = tmp_path / "render.mp4"
    render.write_bytes(made.data)
    assert probe(render).has_audio
    run_ffmpeg(["-ss", "1", "-i", str(render), "-frames:v", "1", str(tmp_path / "frame.png")], what="a frame")
    frame = Image.open(tmp_path / "frame.png").convert("RGB")
    headline = frame.crop(
        (0, 0, frame.width // 2, frame.height // 5)
    )  # the template's headline sits top left
    difference = ImageStat.Stat(ImageChops.difference(headline, Image.new("RGB", headline.size, BACKGROUND)))
    assert max(difference.mean) > 40, "the headline is not over the picture"

    still = LocalTemplate().render(spec.model_copy(update={"inputs": spec.inputs[:1]}))
    assert still.mime == "image/png"  # neither clip nor voice: a still


def stored_result(storage: S3Storage, media: dict[str, Path]) -> StoryResult:
    """The story's keyframe, clip and voice, made and stored on S3 as a story run leaves them."""

    def asset(kind: AssetKind, path: Path, mime: str) -> Asset:
        data = path.read_bytes()
        digest = sha256_bytes(data)
        uri = storage.put_bytes(asset_key(BRIEF.campaign_id, STORY.id, kind, digest, mime), data, mime)
        return Asset(spec_key=digest, kind=kind, provider="local", model="-", prompt="-", uri=uri, sha256=digest,
                     mime=mime, duration_s=probe(path).duration_s if kind is not AssetKind.image else None)  # fmt: skip

    return StoryResult(
        story_id=STORY.id,
        status=StoryStatus.complete,
        keyframe=asset(AssetKind.image, media["image"], "image/png"),
        clips=[asset(AssetKind.video, media["clip"], "video/mp4")],
        voice=asset(AssetKind.speech, media["voice"], "audio/wav"),
    )


def test_a_storys_template_renders_once_on_creatomate_from_presigned_links(flows_on_simulator, s3, media):
    sim = flows_on_simulator
    sim.reset(latency_scale=0.01, latency_jitter=0)
    out = f"s3://{s3.bucket}/template-renders"
    storage = S3Storage(out)
    made = stored_result(storage, media)
    pick = Pick(name="creatomate", model="render")

    first = asyncio.run(render_story_template(STORY, made, BRIEF, pick, out, TEMPLATE_ID))
    again = asyncio.run(render_story_template(STORY, made, BRIEF, pick, out, TEMPLATE_ID))

    assert first.mime == "video/mp4" and first.duration_s == pytest.approx(VOICE_S, abs=0.15)
    assert "/stories/s1/renders/" in first.uri and storage.exists(storage.key_of(first.uri))
    assert again.sha256 == first.sha256
    creates = [r for r in sim.requests() if r["vendor"] == "creatomate" and r["method"] == "POST"]
    assert len(creates) == 1 and [j["vendor"] for j in sim.jobs()].count("creatomate") == 1
    mods = creates[0]["body"]["modifications"]
    assert mods["Headline"] == "Paddle into the sunrise" and mods["CTA"] == "Book now"
    for element in ("Image", "Video", "Voice"):
        assert "X-Amz-Signature=" in mods[f"{element}.source"], (
            element
        )  # a short-lived link, never a public bucket
    entry = ledger_for(storage, BRIEF.campaign_id).entry(
        template_spec(STORY, made, BRIEF, pick, TEMPLATE_ID).key()
    )
    assert entry is not None and entry.state is EntryState.settled and entry.paid_usd > 0


def test_creatomate_on_local_storage_is_refused_in_one_sentence_before_paying(media):
    made = StoryResult(
        story_id=STORY.id,
        status=StoryStatus.complete,
        keyframe=Asset(
            spec_key="k",
            kind=AssetKind.image,
            provider="local",
            model="-",
            prompt="-",
            uri=media["image"].as_uri(),
            sha256=sha256_file(media["image"]),
            mime="image/png",
        ),  # fmt: skip
    )
    spec = template_spec(STORY, made, BRIEF, Pick(name="creatomate"), TEMPLATE_ID)

    with pytest.raises(ProviderError) as refused:
        registry.check(spec)

    assert refused.value.kind is ErrorKind.invalid_input
    said = refused.value.detail
    assert said.count(". ") == 0 and "Creatomate fetches the image input from a link" in said
    assert "CUTROOM_STORAGE=s3://" in said


def test_a_still_render_is_priced_per_image_and_a_video_by_its_seconds():
    keyframe = Asset(spec_key="k", kind=AssetKind.image, provider="local", model="-", prompt="-",
                     uri="file:///keyframe.png", sha256="0" * 64, mime="image/png")  # fmt: skip
    still = template_spec(STORY, StoryResult(story_id=STORY.id, status=StoryStatus.complete, keyframe=keyframe),
                          BRIEF, Pick(name="creatomate", model="render"), TEMPLATE_ID)  # fmt: skip
    creatomate = registry.provider(Capability.template, "creatomate")
    price = creatomate.card(still).price

    assert still.duration_s is None and creatomate.estimate(still) == price.image_usd > 0
    assert creatomate.estimate(still.model_copy(update={"duration_s": 20.0})) == pytest.approx(20 * price.usd)
    assert price.unverified and "/still" in price.describe()
