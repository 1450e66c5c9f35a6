"""The offline animatic: a real H.264 clip that moves as asked, fills the frame and shows the headline."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from cutroom.assets import AssetKind, AssetSpec, InputRef, Style
from cutroom.channels import Aspect
from cutroom.media import MediaError, ffmpeg_exe, last_frame, probe
from cutroom.plan import CameraMotion
from cutroom.remote import Remote
from providers.errors import ErrorKind, ProviderError
from providers.local.video import LocalAnimatic
from providers.polling import run_job
from providers.protocol import Output

#: Tests of this file run on one worker: its module fixtures are costly: one worker builds them once.
pytestmark = pytest.mark.xdist_group("local_video")

SMALL = {"width": 320, "height": 240, "fps": 24, "duration_s": 2.0}
SETTLED = 14  # the first frame past the half-second fade from black


def make_keyframe(path: Path, size: tuple[int, int] = (640, 480)) -> Path:
    """A blue-green gradient with darker shapes for texture and one white disc at the centre to track."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    pixels = np.stack([np.full_like(x, 60), 90 + 120 * y // h, 100 + 130 * x // w], axis=-1).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for i in range(12):
        cx, cy = (i * 149) % w, (i * 97) % h
        draw.rectangle((cx, cy, cx + w // 12, cy + h // 14), fill=(200, 40, 160) if i % 2 else (20, 40, 90))
    r = min(w, h) // 8
    draw.ellipse((w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r), fill=(255, 255, 255))
    image.save(path)
    return path


@pytest.fixture(scope="module")
def keyframe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keyframe(tmp_path_factory.mktemp("key") / "key.png")


def video_spec(key: Path | None, role: str = "keyframe", **fields) -> AssetSpec:
    if key:
        fields.setdefault("inputs", (InputRef(role=role, uri=key.as_uri(), sha256="0" * 64),))
    return AssetSpec(kind=AssetKind.video, provider="local", model="animatic-1", prompt="x", **fields)


def render(spec: AssetSpec, tmp_path: Path, name: str = "clip.mp4") -> tuple[Output, Path]:
    out = LocalAnimatic().render(spec)
    path = tmp_path / name
    path.write_bytes(out.data)
    return out, path


def decoded(path: Path, *output: str) -> bytes:
    return subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), *output, "-f", "rawvideo", "-"],
        capture_output=True,
        check=True,
    ).stdout


def frames(path: Path, width: int, height: int) -> np.ndarray:
    raw = decoded(path, "-pix_fmt", "rgb24")
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3).astype(np.float32)


def frame_count(path: Path) -> int:
    return len(decoded(path, "-vf", "scale=8:8", "-pix_fmt", "gray")) // 64


def whiteness(frame: np.ndarray) -> np.ndarray:
    """How much brighter than anything else in the keyframe each pixel is: only the disc scores."""
    return np.clip(frame @ np.array([0.299, 0.587, 0.114], np.float32) - 200, 0, None)


def marker(frame: np.ndarray) -> tuple[float, float, float]:
    """The disc's centre (sub-pixel, weighted by brightness) and its area in pixels."""
    weight = whiteness(frame)
    ys, xs = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    total = weight.sum()
    return (xs * weight).sum() / total, (ys * weight).sum() / total, float((weight > 27).sum())


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def assert_decodes_cleanly(path: Path) -> None:
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True
    )
    assert (proc.returncode, proc.stderr) == (0, b"")


def test_default_clip_is_5s_720p_h264_ready_for_the_web(keyframe: Path, tmp_path: Path) -> None:
    out, path = render(video_spec(keyframe, camera_motion=CameraMotion.push_in), tmp_path)

    assert_decodes_cleanly(path)
    assert (out.mime, out.width, out.height) == ("video/mp4", 1280, 720)
    assert out.duration_s == pytest.approx(5.0, rel=0.05)
    info = probe(path)
    assert (info.width, info.height, info.fps, info.has_audio) == (1280, 720, 24, False)
    streams = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr
    assert "Video: h264" in streams and "yuv420p" in streams
    assert out.data.index(b"moov") < out.data.index(b"mdat"), "faststart: the index must come first"


@pytest.mark.parametrize(
    ("fields", "size", "fps", "duration"),
    [
        ({"width": 720, "height": 1280, "fps": 30, "duration_s": 2.5}, (720, 1280), 30, 2.5),
        ({"aspect": Aspect.square, "duration_s": 1.0}, (1080, 1080), 24, 1.0),
    ],
)
def test_clip_has_the_size_rate_and_length_asked(
    keyframe: Path, tmp_path: Path, fields: dict, size: tuple[int, int], fps: int, duration: float
) -> None:
    out, path = render(video_spec(keyframe, camera_motion=CameraMotion.pan_right, **fields), tmp_path)

    assert_decodes_cleanly(path)
    info = probe(path)
    assert (out.width, out.height) == (info.width, info.height) == size
    assert info.fps == fps
    assert out.duration_s == pytest.approx(duration, rel=0.05)
    assert frame_count(path) == round(duration * fps)


@pytest.mark.parametrize(
    ("motion", "check"),
    [
        (CameraMotion.push_in, lambda a, b: b[2] > 1.15 * a[2]),
        (CameraMotion.pull_out, lambda a, b: b[2] < a[2] / 1.15),
        # Marker tuples are (x, y, area); when the view pans left the scene slides right in the frame.
        (CameraMotion.pan_left, lambda a, b: b[0] - a[0] > 8),
        (CameraMotion.pan_right, lambda a, b: a[0] - b[0] > 8),
        (CameraMotion.tilt_up, lambda a, b: b[1] - a[1] > 8),
    ],
)
def test_each_camera_motion_moves_the_way_it_says_and_glides(
    keyframe: Path, tmp_path: Path, motion: CameraMotion, check: Callable[[tuple, tuple], bool]
) -> None:
    _, path = render(video_spec(keyframe, camera_motion=motion, **SMALL), tmp_path)
    clip = frames(path, 320, 240)
    settled = clip[SETTLED:]

    assert diff(settled[0], settled[-1]) > 4
    assert check(marker(settled[0]), marker(settled[-1]))
    # Sub-pixel motion: the marker's speed changes gently, with no stop-and-jump of integer-pixel steps.
    path_xy = np.array([marker(f)[:2] for f in settled])
    accel = np.abs(np.diff(path_xy, n=2, axis=0)).max()
    assert accel < 0.5, f"jerky motion: speed changes by {accel:.2f} px between frames"


def test_static_holds_the_picture_once_faded_in(keyframe: Path, tmp_path: Path) -> None:
    _, path = render(video_spec(keyframe, camera_motion=CameraMotion.static, **SMALL), tmp_path)
    clip = frames(path, 320, 240)

    assert clip[0].mean() < 5, "starts from black"
    assert max(diff(clip[SETTLED], f) for f in clip[SETTLED:]) < 1.5


@pytest.mark.parametrize(("source", "size"), [((600, 600), (180, 320)), ((640, 360), (240, 240))])
def test_a_keyframe_of_another_shape_is_cover_cropped_not_letterboxed_or_stretched(
    tmp_path: Path, source: tuple[int, int], size: tuple[int, int]
) -> None:
    key = make_keyframe(tmp_path / "key.png", source)
    spec = video_spec(key, width=size[0], height=size[1], fps=12, duration_s=1.0)
    _, path = render(spec, tmp_path)
    frame = frames(path, *size)[-1]

    edges = [frame[:, :2], frame[:, -2:], frame[:2, :], frame[-2:, :]]
    assert min(edge.mean() for edge in edges) > 60, "black bars at the frame edges"
    disc = np.argwhere(whiteness(frame) > 27)
    height, width = disc.max(axis=0) - disc.min(axis=0) + 1
    assert width / height == pytest.approx(1.0, abs=0.1), "the round marker came out oval: stretched"


def test_headline_is_revealed_at_the_top_clear_of_captions(keyframe: Path, tmp_path: Path) -> None:
    style = Style(brand="Aurora", palette=("#FF5500",), headline="Light that follows you")
    _, plain = render(video_spec(keyframe, **SMALL), tmp_path, "plain.mp4")
    _, titled = render(video_spec(keyframe, style=style, **SMALL), tmp_path, "titled.mp4")
    a, b = frames(plain, 320, 240), frames(titled, 320, 240)

    upper, lower = slice(0, 100), slice(160, 240)
    assert diff(a[-1][upper], b[-1][upper]) > 10, "no headline at the top"
    assert diff(a[-1][lower], b[-1][lower]) < 1, "the headline should leave the caption band below clear"
    assert diff(a[2][upper], b[2][upper]) < 1, "the headline should arrive, not be there from the first frame"


def test_a_continuation_frame_cuts_in_without_fading(keyframe: Path, tmp_path: Path) -> None:
    _, path = render(video_spec(keyframe, role="first_frame", **SMALL), tmp_path)

    assert frames(path, 320, 240)[0].mean() > 60


def test_same_spec_renders_the_same_bytes(keyframe: Path) -> None:
    spec = video_spec(keyframe, camera_motion=CameraMotion.pan_left, **SMALL)
    assert LocalAnimatic().render(spec).data == LocalAnimatic().render(spec).data


def test_keyframe_from_a_url_is_downloaded(keyframe: Path, tmp_path: Path) -> None:
    def cdn(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/key.png":
            return httpx.Response(200, content=keyframe.read_bytes())
        return httpx.Response(404)

    # A public address for the CDN's name (the check refuses anything else), the CDN itself on a mock wire.
    remote = Remote(resolver=lambda host, port: ["93.184.215.14"], transport=httpx.MockTransport(cdn))
    generator = LocalAnimatic(remote)
    good = InputRef(role="keyframe", uri="https://cdn.example/key.png", sha256="0" * 64)
    out = run_job(generator, video_spec(None, inputs=(good,), **SMALL), sleep=lambda _: None)
    assert (out.width, out.height) == (320, 240)
    gone = InputRef(role="keyframe", uri="https://cdn.example/expired.png", sha256="0" * 64)
    with pytest.raises(ProviderError) as err:
        generator.render(video_spec(None, inputs=(gone,), **SMALL))
    assert err.value.kind is ErrorKind.invalid_input and "expired.png" in str(err.value)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({}, "keyframe"),
        ({"inputs": (InputRef(role="reference", uri="file:///tmp/ref.png", sha256="0" * 64),)}, "keyframe"),
        (
            {"inputs": (InputRef(role="keyframe", uri="file:///nowhere/key.png", sha256="0" * 64),)},
            "/nowhere",
        ),
    ],
)
def test_without_a_usable_keyframe_the_request_is_refused(fields: dict, words: str) -> None:
    with pytest.raises(ProviderError) as err:
        LocalAnimatic().render(video_spec(None, **fields))
    assert err.value.kind is ErrorKind.invalid_input
    assert words in str(err.value)


def test_odd_frame_size_is_refused(keyframe: Path) -> None:
    with pytest.raises(ProviderError) as err:
        LocalAnimatic().render(video_spec(keyframe, width=721, height=1280))
    assert err.value.kind is ErrorKind.invalid_input and "721x1280" in str(err.value)


def test_last_frame_is_the_clips_final_picture(keyframe: Path, tmp_path: Path) -> None:
    _, path = render(video_spec(keyframe, camera_motion=CameraMotion.pan_right, **SMALL), tmp_path)
    clip = frames(path, 320, 240)

    png = last_frame(path, tmp_path / "last.png")
    with Image.open(png) as image:
        assert (image.format, image.size) == ("PNG", (320, 240))
        still = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert diff(still, clip[-1]) < 1
    assert diff(still, clip[len(clip) // 2]) > 2


def test_last_frame_of_something_that_is_not_a_video_says_so(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    with pytest.raises(MediaError, match="last frame of .*notes.mp4"):
        last_frame(bogus, tmp_path / "last.png")
