"""Assembly: each story's clips and voice-over become one channel-ready reel, its picture encoded exactly once.

Every clip is cropped to the format's aspect then scaled (crop first, so only the kept pixels are scaled), the
clips and the end card are chained with xfade, and captions arrive as one timed image stream (an ffconcat of
Pillow-typeset PNGs) under one overlay. An ffmpeg input holds its decoder's frames until the run ends, so the
picture is made in runs of at most RUN_SHOTS shots, each encoded to a segment, so memory stays flat in the
number of clips. Meanwhile another run encodes the audio: one concat of per-story voice segments and silence.
A last run joins them all without re-encoding. Pillow renders all text, so ffmpeg never needs a font.
"""

from __future__ import annotations

import logging
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from pydantic import BaseModel, Field

from cutroom.assets import WordTiming
from cutroom.brief import Brand
from cutroom.channels import Aspect, Format
from cutroom.fonts import font, wrap
from cutroom.media import MediaError, MediaInfo, probe, probe_all, run_ffmpeg, x264_preset

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
#: veryfast keeps a 2-core render near real time; crf 20 keeps it channel-ready after the platforms re-encode.
REEL_PRESET = "veryfast"


def video_codec() -> list[str]:
    """The reel's H.264 encoder options (ultrafast for draft renders)."""
    return ["-c:v", "libx264", "-preset", x264_preset(REEL_PRESET), "-crf", "20", "-pix_fmt", "yuv420p"]


AUDIO_CODEC = ["-c:a", "aac", "-b:a", "160k", "-ar", str(SAMPLE_RATE), "-ac", "2"]

PHRASE_WORDS = 4
_PHRASE_BREAK = re.compile(r"[.,!?;:…—–][\"')\]]*$")
#: A gap shorter than this keeps the previous phrase up, so captions do not flicker between phrases.
_HOLD_GAP_S = 0.6
#: Stories a warning names when a reel leaves trailing ones out; it counts the rest.
NAMED_LEFT_OUT = 3
#: Shots (clips and the end card) per ffmpeg run: each keeps ≈ 30 MB of decoded 720p frames while its run lasts.
RUN_SHOTS = 6


class Cut(BaseModel):
    """One story's part of a reel."""

    story_id: str
    clips: list[Path] = Field(description="MP4s in shot order; any size or aspect, audio tracks are ignored.")
    voice: Path | None = Field(default=None, description="Voice-over; it starts with the story's first clip.")
    words: list[WordTiming] = Field(default_factory=list, description="Word timings relative to the voice.")


class Reel(NamedTuple):
    """A written reel: what the file holds, and the stories cut into it (trailing ones may have been left out)."""

    info: MediaInfo
    stories: list[str]


class Phrase(NamedTuple):
    start_s: float
    end_s: float
    text: str


def reel_duration(clip_durations: list[float], crossfade_s: float, end_card_s: float) -> float:
    """The planned reel length: clips overlap by the crossfade, then the end card adds end_card_s.

    The crossfade never exceeds half the shortest clip, so no two transitions overlap.
    """
    if not clip_durations:
        return end_card_s
    fade = max(0.0, min(crossfade_s, min(clip_durations) / 2))
    return sum(clip_durations) - fade * (len(clip_durations) - 1) + end_card_s


def caption_phrases(words: list[WordTiming]) -> list[Phrase]:
    """Group word timings into short caption phrases: at most 4 words, breaking after punctuation."""
    groups: list[list[WordTiming]] = []
    for word in words:
        if not word.word.strip():
            continue
        if not groups or len(groups[-1]) == PHRASE_WORDS or _PHRASE_BREAK.search(groups[-1][-1].word):
            groups.append([])
        groups[-1].append(word)
    phrases = [Phrase(g[0].start_s, g[-1].end_s, " ".join(w.word.strip() for w in g)) for g in groups]
    for i in range(len(phrases) - 1):
        nxt = phrases[i + 1].start_s
        if nxt - phrases[i].end_s < _HOLD_GAP_S:
            phrases[i] = phrases[i]._replace(end_s=max(nxt, phrases[i].start_s))
    return phrases


def end_card(brand: Brand, cta: str, width: int, height: int) -> Image.Image:
    """The closing frame: brand colour field, logo if set, brand name and the call to action in a pill."""
    bg = _rgb(brand.palette[0])
    ink = _ink_on(bg)
    accent = _rgb(brand.palette[1]) if len(brand.palette) > 1 else ink
    if sum(abs(a - b) for a, b in zip(accent, bg, strict=True)) < 90:
        accent = ink  # an accent too close to the background would hide the pill
    card = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(card)
    unit = min(width, height)
    gap = round(unit * 0.06)

    logo = None
    if brand.logo is not None:
        logo = _logo(brand.logo)
        logo.thumbnail((round(unit * 0.5), round(unit * 0.28)))
    name_font = _fit(draw, brand.name, round(unit * 0.12), round(width * 0.84))
    name_box = draw.textbbox((0, 0), brand.name, font=name_font, anchor="lt")
    name_h = name_box[3] - name_box[1]
    cta_font = _fit(draw, cta, round(unit * 0.055), round(width * 0.72))
    cta_box = draw.textbbox((0, 0), cta, font=cta_font, anchor="lt")
    pad_x, pad_y = round(cta_font.size * 0.9), round(cta_font.size * 0.55)
    pill_w, pill_h = cta_box[2] - cta_box[0] + 2 * pad_x, cta_box[3] - cta_box[1] + 2 * pad_y

    heights = ([logo.height] if logo else []) + [name_h] + ([pill_h] if cta else [])
    y = (height - sum(heights) - gap * (len(heights) - 1)) // 2
    if logo:
        card.paste(logo, ((width - logo.width) // 2, y), logo)
        y += logo.height + gap
    draw.text((width // 2, y - name_box[1]), brand.name, font=name_font, fill=ink, anchor="mt")
    y += name_h + gap
    if cta:
        left = (width - pill_w) // 2
        draw.rounded_rectangle((left, y, left + pill_w, y + pill_h), radius=pill_h // 2, fill=accent)
        draw.text((width // 2, y + pad_y - cta_box[1]), cta, font=cta_font, fill=_ink_on(accent), anchor="mt")
    return card


def _logo(path: Path) -> Image.Image:
    """The brand's logo. It was checked with the brief, but the file can change before the reel is cut."""
    try:
        with Image.open(path) as image:
            return image.convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        why = (
            "its bytes are no image format Cutroom reads" if isinstance(exc, UnidentifiedImageError) else exc
        )
        raise MediaError(f"the brand logo {path} is not a readable image: {why}") from exc


def assemble_reel(
    cuts: list[Cut],
    fmt: Format,
    brand: Brand,
    cta: str,
    out: Path,
    *,
    crossfade_s: float = 0.5,
    end_card_s: float = 2.5,
) -> Reel:
    """Write one H.264/AAC MP4 reel of the cuts in order, captioned, ending on the brand card.

    Trailing stories that would pass the format's length limit are left out whole.
    """
    infos = _check_inputs(cuts)
    timeline = _plan(cuts, infos, fmt, crossfade_s, end_card_s)
    cuts, infos = cuts[: timeline.stories], infos[: timeline.stories]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.stem}.part.mp4")
    what = f"assembling the {fmt.aspect.value} reel {out.name}"
    with tempfile.TemporaryDirectory(prefix="cutroom-reel-") as tmp, ThreadPoolExecutor(1) as background:
        work = Path(tmp)
        # The audio is encoded while the picture is: it needs a core for a moment, the picture runs for long.
        sound = background.submit(
            run_ffmpeg, _sound(cuts, timeline, work / "sound.m4a"), what=f"{what} (audio)"
        )
        shots = _shots(cuts, infos, timeline, fmt, brand, cta, work)
        captions = _caption_track(_timed_phrases(cuts, timeline), fmt, work)
        runs = _runs(shots, timeline)
        segments = []
        for n, run in enumerate(runs):
            segments.append(work / f"segment{n:03d}.mp4")
            run_ffmpeg(
                _picture(run, timeline, captions, work, segments[-1]), what=f"{what} ({n + 1}/{len(runs)})"
            )
        (work / "segments.ffconcat").write_text(
            "\n".join(["ffconcat version 1.0", *(f"file {s.name}" for s in segments)]) + "\n"
        )
        sound.result()
        args = ["-f", "concat", "-i", str(work / "segments.ffconcat"), "-i", str(work / "sound.m4a")]
        args += ["-map", "0:v", "-map", "1:a", "-c", "copy", "-movflags", "+faststart", str(part)]
        try:
            run_ffmpeg(args, what=f"{what} (joining)")
            part.replace(out)
        finally:
            part.unlink(missing_ok=True)
    return Reel(probe(out), [cut.story_id for cut in cuts])


class _Timeline(NamedTuple):
    """The reel on its frame clock."""

    fps: int
    clips: list[int]  # each kept clip's length, in frames
    fade: int
    card: int
    starts: list[int]  # where each clip starts fading in
    story_starts: list[int]  # where each kept story starts, then the reel's end

    @property
    def stories(self) -> int:
        return len(self.story_starts) - 1

    @property
    def card_start(self) -> int:
        return self.starts[-1] + self.clips[-1] - self.fade


def _check_inputs(cuts: list[Cut]) -> list[list[MediaInfo]]:
    """Every input exists and holds what it should, or a ValueError/MediaError names the story and the file."""
    if not cuts:
        raise ValueError("a reel needs at least one story; none were given")
    files = []
    for cut in cuts:
        if not cut.clips:
            raise ValueError(f"story {cut.story_id!r} has no clips to assemble")
        for path in [*cut.clips, *([cut.voice] if cut.voice else [])]:
            if not Path(path).is_file():
                raise ValueError(f"story {cut.story_id!r}: media file {path} does not exist")
            files.append((cut.story_id, path))
    found = dict(zip(files, _probe_all(files), strict=True))
    infos = []
    for cut in cuts:
        story = []
        for path in cut.clips:
            info = found[cut.story_id, path]
            if not (info.has_video and info.width and info.height and info.duration_s):
                raise MediaError(f"story {cut.story_id!r}: {path} holds no readable video")
            story.append(info)
        if cut.voice and not found[cut.story_id, cut.voice].has_audio:
            raise MediaError(f"story {cut.story_id!r}: voice-over {cut.voice} holds no audio")
        infos.append(story)
    return infos


def _probe_all(files: list[tuple[str, Path]]) -> list[MediaInfo]:
    """What each (story, file) holds, read by one ffmpeg start: a reel may have a hundred clips."""
    try:
        return probe_all([path for _, path in files])
    except MediaError:  # say which story's file it is
        return [_probe(story_id, path) for story_id, path in files]


def _probe(story_id: str, path: Path) -> MediaInfo:
    try:
        return probe(path)
    except MediaError as exc:
        raise MediaError(f"story {story_id!r}: {exc}") from exc


def _plan(
    cuts: list[Cut], infos: list[list[MediaInfo]], fmt: Format, crossfade_s: float, end_card_s: float
) -> _Timeline:
    """Lay the stories on a frame clock, leaving out trailing stories that would pass the format's limit."""
    fps = 24 if all(i.fps and i.fps <= 24.5 for story in infos for i in story) else 30
    frames = [[max(1, round((i.duration_s or 0) * fps)) for i in story] for story in infos]
    fade = round(max(0.0, crossfade_s) * fps)
    card = round(max(0.0, end_card_s) * fps)  # 0: no end card (a scene of a longer cut)
    kept = len(cuts)
    while _length(frames[:kept], fade, card) > fmt.max_duration_s * fps:
        kept -= 1
        if kept == 0:
            raise ValueError(
                f"story {cuts[0].story_id!r} alone runs longer than the {fmt.aspect.value} limit of "
                f"{fmt.max_duration_s:g} s"
            )
    if kept < len(cuts):
        left_out = ", ".join(cut.story_id for cut in cuts[kept : kept + NAMED_LEFT_OUT])
        if (more := len(cuts) - kept - NAMED_LEFT_OUT) > 0:
            left_out += f" and {more} more"
        log.warning(
            "the %s reel would pass %g s; left out %s", fmt.aspect.value, fmt.max_duration_s, left_out
        )
    clips = [f for story in frames[:kept] for f in story]
    fade = min(fade, min(clips) // 2)
    starts = [0]
    for length in clips[:-1]:
        starts.append(starts[-1] + length - fade)
    firsts = [sum(len(story) for story in frames[:k]) for k in range(kept)]
    end = starts[-1] + clips[-1] + card
    return _Timeline(fps, clips, fade, card, starts, [starts[i] for i in firsts] + [end])


def _length(stories: list[list[int]], fade: int, card: int) -> int:
    """A reel's length in frames: reel_duration on the frame clock."""
    clips = [f for story in stories for f in story]
    return sum(clips) - min(fade, min(clips) // 2) * (len(clips) - 1) + card


class _Shot(NamedTuple):
    """A clip or the end card on the reel clock: its ffmpeg input and the filters that shape its frames."""

    source: list[str]
    shape: str
    start: int  # where it starts fading in
    length: int  # frames


class _Run(NamedTuple):
    """One ffmpeg run's stretch of the reel, frames [start, end): each shot with the frames [first, stop) it uses."""

    start: int
    end: int
    pieces: list[tuple[_Shot, int, int]]


class _CaptionTrack(NamedTuple):
    """Typeset phrases on the reel clock, (start, end, PNG name) without overlaps, and the band's top row."""

    shown: list[tuple[int, int, str]]
    top: int


def _shots(
    cuts: list[Cut],
    infos: list[list[MediaInfo]],
    timeline: _Timeline,
    fmt: Format,
    brand: Brand,
    cta: str,
    work: Path,
) -> list[_Shot]:
    """The clips in order, then the end card (typeset into work) if the reel has one."""
    fps = timeline.fps
    paths = [path for cut in cuts for path in cut.clips]
    clip_infos = [info for story in infos for info in story]
    # The decoders wait on the encoder anyway; one thread each keeps memory down.
    shots = [
        _Shot(["-threads", "1", "-i", str(path)], _cover(info, fmt, fps), start, length)
        for path, info, start, length in zip(paths, clip_infos, timeline.starts, timeline.clips, strict=True)
    ]
    if timeline.card:
        end_card(brand, cta, fmt.width, fmt.height).save(work / "card.png")
        source = ["-framerate", str(fps), "-i", str(work / "card.png")]
        shots.append(
            _Shot(source, "format=yuv420p,setsar=1", timeline.card_start, timeline.card + timeline.fade)
        )
    return shots


def _runs(shots: list[_Shot], timeline: _Timeline) -> list[_Run]:
    """Split the reel between shots, RUN_SHOTS at a time, so that every crossfade is made whole in one run.

    A run ends once the next shot has faded in, taking that shot's first `fade` frames; the next run starts
    at that shot's frame `fade`.
    """
    fade, end = timeline.fade, timeline.story_starts[-1]
    runs = []
    for first in range(0, len(shots), RUN_SHOTS):
        stop = min(first + RUN_SHOTS, len(shots))
        pieces = [(shots[first], fade if first else 0, shots[first].length)]
        pieces += [(shot, 0, shot.length) for shot in shots[first + 1 : stop]]
        if stop < len(shots) and fade:
            pieces.append((shots[stop], 0, fade))
        start = shots[first].start + fade if first else 0
        runs.append(_Run(start, shots[stop].start + fade if stop < len(shots) else end, pieces))
    return runs


def _picture(
    run: _Run, timeline: _Timeline, captions: _CaptionTrack | None, work: Path, out: Path
) -> list[str]:
    """The ffmpeg arguments that encode the run's stretch of the reel, captioned, to a silent segment."""
    fps = timeline.fps
    inputs, graph = [], []
    for n, (shot, first, stop) in enumerate(run.pieces):
        inputs += shot.source
        graph.append(f"[{n}:v]{shot.shape},{_frames(first, stop, fps)}[v{n}]")
    graph.append(_transitions([shot.start - run.start for shot, _, _ in run.pieces], timeline))
    video = "[vx]"
    listing = work / f"{out.stem}-captions.ffconcat"
    if captions and _write_caption_list(captions.shown, run, fps, listing):
        graph.append(f"[vx][{len(run.pieces)}:v]overlay=x=0:y={captions.top}:eof_action=pass[vcap]")
        # Unsafe mode only allows the per-file options; the list names nothing but our own PNGs.
        inputs += ["-f", "concat", "-safe", "0", "-i", str(listing)]
        video = "[vcap]"
    return [
        *inputs,
        "-filter_complex",
        ";".join(graph),
        "-map",
        video,
        *video_codec(),
        "-fps_mode",
        "cfr",
        str(out),
    ]


def _sound(cuts: list[Cut], timeline: _Timeline, out: Path) -> list[str]:
    """The ffmpeg arguments that encode one stereo track, each voice in its story's window, to out."""
    inputs, graph = [], []
    for k, cut in enumerate(cuts):
        window = timeline.story_starts[k + 1] - timeline.story_starts[k]
        samples = window * SAMPLE_RATE // timeline.fps
        source = f"anullsrc=r={SAMPLE_RATE}:cl=stereo"
        if cut.voice is not None:
            source = f"[{len(inputs) // 2}:a]aresample={SAMPLE_RATE}"
            inputs += ["-i", str(cut.voice)]
        # Cut at the next story's start, padded to it: voices never overlap, so no mixing and no clipping.
        graph.append(
            f"{source},aformat=sample_fmts=fltp:sample_rates={SAMPLE_RATE}:channel_layouts=stereo,"
            f"atrim=end_sample={samples},apad=whole_len={samples}[a{k}]"
        )
    graph.append(f"{''.join(f'[a{k}]' for k in range(len(cuts)))}concat=n={len(cuts)}:v=0:a=1[aout]")
    return [*inputs, "-filter_complex", ";".join(graph), "-map", "[aout]", *AUDIO_CODEC, str(out)]


def _cover(info: MediaInfo, fmt: Format, fps: int) -> str:
    """Cover the frame: crop the source to the format's aspect, then scale only what is kept."""
    steps = [f"fps={fps}"]
    iw, ih = info.width or 0, info.height or 0
    if (iw, ih) != (fmt.width, fmt.height):
        if iw * fmt.height > ih * fmt.width:
            cw, ch = ih * fmt.width // fmt.height, ih
        else:
            cw, ch = iw, iw * fmt.height // fmt.width
        steps += [f"crop={cw - cw % 2}:{ch - ch % 2}", f"scale={fmt.width}:{fmt.height}"]
    return ",".join([*steps, "setsar=1", "format=yuv420p"])


def _frames(first: int, stop: int, fps: int) -> str:
    """Frames [first, stop) from t=0; a stream shorter than its container claims holds its last frame."""
    return (
        f"tpad=stop_mode=clone:stop_duration={stop / fps:.3f},"
        f"trim=start_frame={first}:end_frame={stop},setpts=PTS-STARTPTS"
    )


def _transitions(starts: list[int], timeline: _Timeline) -> str:
    """Chain a run's shots, each starting at its frame in `starts`: xfade between neighbours, concat for hard cuts."""
    labels = [f"[v{n}]" for n in range(len(starts))]
    if timeline.fade == 0 or len(labels) == 1:
        return f"{''.join(labels)}concat=n={len(labels)}:v=1:a=0[vx]"
    chain, previous = [], labels[0]
    for n, (label, offset) in enumerate(zip(labels[1:], starts[1:], strict=True)):
        target = "[vx]" if n == len(starts) - 2 else f"[x{n}]"
        duration, at = timeline.fade / timeline.fps, offset / timeline.fps
        chain.append(f"{previous}{label}xfade=duration={duration:.6f}:offset={at:.6f}{target}")
        previous = target
    return ";".join(chain)


def _timed_phrases(cuts: list[Cut], timeline: _Timeline) -> list[tuple[int, int, str]]:
    """Each story's phrases on the reel's frame clock, kept inside the story and off the end card."""
    timed = []
    for k, cut in enumerate(cuts):
        begin = timeline.story_starts[k]
        stop = min(timeline.story_starts[k + 1], timeline.card_start)
        for phrase in caption_phrases(cut.words):
            start = begin + round(phrase.start_s * timeline.fps)
            end = min(begin + round(phrase.end_s * timeline.fps), stop)
            if end > start:
                timed.append((start, end, phrase.text))
    return timed


def _caption_track(phrases: list[tuple[int, int, str]], fmt: Format, work: Path) -> _CaptionTrack | None:
    """Typeset each phrase once into a band-sized PNG in work; a later phrase cuts short the one before."""
    if not phrases:
        return None
    size, max_width, band_height, top = _caption_layout(fmt)
    Image.new("RGBA", (fmt.width, band_height)).save(work / "blank.png")
    shown: list[tuple[int, int, str]] = []
    clock = 0
    for n, (start, end, text) in enumerate(sorted(phrases)):
        start = max(start, clock)
        if end > start:
            _caption(text, fmt.width, band_height, size, max_width).save(work / f"cap{n:04d}.png")
            shown.append((start, end, f"cap{n:04d}.png"))
            clock = end
    return _CaptionTrack(shown, top)


def _write_caption_list(shown: list[tuple[int, int, str]], run: _Run, fps: int, listing: Path) -> bool:
    """Time the captions that show in the run's frames as one ffconcat; False if none does."""
    timed: list[tuple[str, int]] = []
    clock = run.start
    for start, end, name in shown:
        start, end = max(start, clock), min(end, run.end)
        if end > start:
            if start > clock:
                timed.append(("blank.png", start - clock))
            timed.append((name, end - start))
            clock = end
    if not timed:
        return False
    timed.append(("blank.png", 1))
    # The framerate option puts the stream on the reel's frame clock (the image demuxer would round to 1/25 s).
    lines = [f"file {name}\noption framerate {fps}\nduration {frames / fps:.6f}" for name, frames in timed]
    listing.write_text("\n".join(["ffconcat version 1.0", *lines]) + "\n")
    return True


def _caption_layout(fmt: Format) -> tuple[int, int, int, int]:
    """Font size, text width, band height and band top: lower third, clear of the 9:16 apps' buttons."""
    size = round(min(fmt.width, fmt.height) * 0.06)
    vertical = fmt.aspect is Aspect.vertical
    side = round(fmt.width * (0.1 if vertical else 0.06))
    bottom = round(fmt.height * (0.2 if vertical else 0.1))
    band_height = 2 * round(size * 1.25) + size
    return size, fmt.width - 2 * side, band_height, fmt.height - bottom - band_height


def _caption(text: str, width: int, band_height: int, size: int, max_width: int) -> Image.Image:
    """One phrase: white outlined text on a dark rounded box, centred at the bottom of a transparent band."""
    pad, room = size // 2, max_width - size
    face = font(size)
    lines = wrap(text, face, room)
    while size > 10 and (len(lines) > 2 or any(face.getlength(line) > room for line in lines)):
        size -= 2
        face, lines = font(size), wrap(text, font(size), room)
    line_height = round(face.size * 1.25)
    box_width = round(max(face.getlength(line) for line in lines)) + 2 * pad
    box_height = len(lines) * line_height + pad
    band = Image.new("RGBA", (width, band_height))
    draw = ImageDraw.Draw(band)
    left, top = (width - box_width) // 2, band_height - box_height
    draw.rounded_rectangle((left, top, left + box_width, band_height - 1), radius=pad, fill=(0, 0, 0, 150))
    for i, line in enumerate(lines):
        y = top + pad // 2 + line_height * i + line_height // 2
        draw.text(
            (width // 2, y),
            line,
            font=face,
            fill="white",
            anchor="mm",
            stroke_width=max(2, face.size // 16),
            stroke_fill="black",
        )
    return band


def _fit(draw: ImageDraw.ImageDraw, text: str, size: int, width: int) -> ImageFont.FreeTypeFont:
    """The font at `size`, or smaller until `text` fits `width`."""
    while size > 10 and draw.textlength(text, font=font(size)) > width:
        size = round(size * 0.9)
    return font(size)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _ink_on(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """White or near-black, whichever reads better on the background (WCAG relative luminance)."""
    r, g, b = (c / 255 for c in background)
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return (255, 255, 255) if luminance < 0.18 else (17, 17, 17)
