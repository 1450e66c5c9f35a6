"""P5: assembling clips + a voice-over + captions into 9:16, 1:1 and 16:9 — assemble_reel against ffmpeg alone.

The baseline is what one would write by hand for the same reel: one ffmpeg run with the same encoder settings
and the same work in its filtergraph (crop and scale each clip, xfade between them and into an end card,
captions as timed drawtext, the voice resampled and padded to the reel). Cutroom's time is the whole
assemble_reel call: probing the inputs, typesetting captions and card, ffmpeg, probing the result.

A last row assembles many 1 s clips (130; quick: 40) into 9:16 beside the same one-graph command, in which
ffmpeg decodes every clip at once: peak RSS is the most the bench's ffmpeg children hold at once, sampled.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.campaigns import process_tree
from bench.harness import Row, Timing, ratio, timed
from cutroom.assembly import (
    AUDIO_CODEC,
    SAMPLE_RATE,
    Cut,
    assemble_reel,
    caption_phrases,
    reel_duration,
    video_codec,
)
from cutroom.assets import WordTiming
from cutroom.brief import Brand
from cutroom.channels import SIZES, Aspect, Format
from cutroom.fonts import font
from cutroom.media import probe, run_ffmpeg

TITLE = "Reel assembly into 9:16, 1:1 and 16:9"
MAX_RATIO, MAX_RSS_MIB = 1.1, 500
TARGET = f"≤ {MAX_RATIO:g}× ffmpeg alone (wall)"
MANY_TARGET = f"{TARGET}, peak RSS < {MAX_RSS_MIB} MiB"
MANY_CLIP_S = 1.0
#: How often the ffmpeg children are weighed: a run of the many-clip reel lasts a few seconds.
SAMPLE_EVERY_S = 0.05
FPS = 24
FADE_S, CARD_S = 0.5, 2.5  # assemble_reel's defaults
BRAND = Brand(name="Aurora", palette=["#1A2B3C", "#F5A623"])
CTA = "Shop now"
SCRIPT = (
    "Meet Aurora, the lamp that listens. It wakes you with a slow sunrise, warms the room at dusk, "
    "and dims itself when the film starts. One touch, or just your voice."
)
WORD_S = 0.32
VARIANTS = ("cutroom", "ffmpeg")


def run(quick: bool) -> list[Row]:
    clips, clip_s, rounds = (4, 3.0, 1) if quick else (10, 5.0, 2)
    formats = [Format(aspect=a, width=SIZES[a][0], height=SIZES[a][1], max_duration_s=600) for a in Aspect]
    timings = {(variant, f.aspect): Timing() for variant in VARIANTS for f in formats}
    lengths: dict[tuple[str, Aspect], float] = {}
    with tempfile.TemporaryDirectory(prefix="cutroom-bench-p5-") as tmp:
        work = Path(tmp)
        cut = _inputs(work, clips, clip_s)
        for n in range(rounds):
            for i, fmt in enumerate(formats):
                # Alternate who goes first, so neither always runs on a warmer cache or a quieter machine.
                for variant in VARIANTS if (n + i) % 2 == 0 else VARIANTS[::-1]:
                    reel = work / f"{fmt.aspect.slug}-{variant}.mp4"
                    with timed() as timing:
                        if variant == "cutroom":
                            assemble_reel([cut], fmt, BRAND, CTA, reel)
                        else:
                            run_ffmpeg(_by_hand(cut, fmt, clip_s, reel, work), what="the hand-written reel")
                    timings[variant, fmt.aspect] += timing
                    lengths[variant, fmt.aspect] = probe(reel).duration_s or 0.0
    inputs = f"{clips} × {clip_s:g} s 720p clips, voice, captions"
    rows = [_row(f"{f.aspect.value}, {inputs}", [f.aspect], timings, lengths) for f in formats]
    return [
        *rows,
        _row(f"all three, {inputs}", list(Aspect), timings, lengths),
        _many_clips(40 if quick else 130),
    ]


def _many_clips(clips: int) -> Row:
    """A 9:16 reel of many short clips: wall and the ffmpeg children's peak RSS, Cutroom against one graph."""
    fmt = Format(
        aspect=Aspect.vertical,
        width=SIZES[Aspect.vertical][0],
        height=SIZES[Aspect.vertical][1],
        max_duration_s=600,
    )
    values: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="cutroom-bench-p5-many-") as tmp:
        work = Path(tmp)
        cut = _inputs(work, clips, MANY_CLIP_S)
        for variant in VARIANTS:
            reel = work / f"{variant}.mp4"
            with timed() as timing, _peak_rss() as peak:
                if variant == "cutroom":
                    assemble_reel([cut], fmt, BRAND, CTA, reel)
                else:
                    run_ffmpeg(_by_hand(cut, fmt, MANY_CLIP_S, reel, work), what="the hand-written reel")
            values[variant] = {
                "wall s": timing.wall_s,
                "cpu s": timing.cpu_s,
                "peak RSS MiB": peak[0],
                "reel s": probe(reel).duration_s or 0.0,
            }
    ours, theirs = values["cutroom"], values["ffmpeg"]
    wall = ratio(ours["wall s"], theirs["wall s"])
    ratios = {"wall": wall, "peak RSS": ratio(ours["peak RSS MiB"], theirs["peak RSS MiB"])}
    met = wall is not None and wall <= MAX_RATIO and ours["peak RSS MiB"] < MAX_RSS_MIB
    subject = f"9:16, {clips} × {MANY_CLIP_S:g} s 720p clips, voice, captions"
    return Row(subject, ours, {"ffmpeg alone, one graph": theirs}, ratios, MANY_TARGET, met)


@contextmanager
def _peak_rss() -> Iterator[list[float]]:
    """The most MiB this process's children (ffmpeg) held at once during the block, in a one-item list.

    Sampled from /proc, not read from ru_maxrss: a vfork'd child inherits the bench process's high-water mark.
    """
    peak, done = [0.0], threading.Event()

    def weigh() -> None:
        while not done.wait(SAMPLE_EVERY_S):
            children = [p.rss for pid, p in process_tree(os.getpid()).items() if pid != os.getpid()]
            peak[0] = max(peak[0], sum(children) / 2**20)

    scale = threading.Thread(target=weigh, name="rss", daemon=True)
    scale.start()
    try:
        yield peak
    finally:
        done.set()
        scale.join()


def _row(
    subject: str,
    aspects: list[Aspect],
    timings: dict[tuple[str, Aspect], Timing],
    lengths: dict[tuple[str, Aspect], float],
) -> Row:
    """Cutroom against ffmpeg alone over the given formats; a single format also shows both reels' length."""
    values = {}
    for variant in VARIANTS:
        total = Timing()
        for aspect in aspects:
            total += timings[variant, aspect]
        values[variant] = {"wall s": total.wall_s, "cpu s": total.cpu_s}
        if len(aspects) == 1:
            values[variant]["reel s"] = lengths[variant, aspects[0]]
    ours, theirs = values["cutroom"], values["ffmpeg"]
    wall = ratio(ours["wall s"], theirs["wall s"])
    ratios = {"wall": wall, "cpu": ratio(ours["cpu s"], theirs["cpu s"])}
    met = wall is not None and wall <= MAX_RATIO
    return Row(subject, ours, {"ffmpeg alone": theirs}, ratios, TARGET, met)


def _inputs(work: Path, clips: int, clip_s: float) -> Cut:
    """Distinct moving 1280×720 H.264 clips, a voice-over spanning them, and its word timings."""
    paths = []
    for n in range(clips):
        path = work / f"clip{n:02d}.mp4"
        source = f"testsrc2=s=1280x720:r={FPS}:d={clip_s},hue=h={n * 360 / clips:.0f}"
        run_ffmpeg(
            [
                "-f",
                "lavfi",
                "-i",
                source,
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-pix_fmt",
                "yuv420p",
                str(path),
            ],
            what="making a benchmark clip",
        )
        paths.append(path)
    voice_s = reel_duration([clip_s] * clips, FADE_S, CARD_S) - CARD_S - FADE_S
    voice = work / "voice.wav"
    # A speech provider's usual shape: mono 22.05 kHz, so the reel's resampling has work to do.
    run_ffmpeg(
        ["-f", "lavfi", "-i", f"sine=f=180:sample_rate=22050:d={voice_s:.2f}", "-ac", "1", str(voice)],
        what="making the benchmark voice-over",
    )
    count, script = int(voice_s / WORD_S), SCRIPT.split()
    words = [
        WordTiming(word=script[i % len(script)], start_s=i * WORD_S, end_s=(i + 0.9) * WORD_S)
        for i in range(count)
    ]
    return Cut(story_id="bench", clips=paths, voice=voice, words=words)


def _by_hand(cut: Cut, fmt: Format, clip_s: float, out: Path, work: Path) -> list[str]:
    """The ffmpeg arguments one would write for this reel: crop+scale, xfade, drawtext captions, the voice."""
    w, h, n = fmt.width, fmt.height, len(cut.clips)
    fontfile = font(10).path
    args, graph = [], []
    for k, clip in enumerate(cut.clips):
        args += ["-i", str(clip)]
        crop = f"crop='trunc(min(iw,ih*{w}/{h})/2)*2':'trunc(min(ih,iw*{h}/{w})/2)*2'"
        graph.append(f"[{k}:v]fps={FPS},{crop},scale={w}:{h},setsar=1,format=yuv420p[v{k}]")

    unit = min(w, h)
    args += ["-f", "lavfi", "-i", f"color=c=0x{BRAND.palette[0][1:]}:s={w}x{h}:r={FPS}:d={CARD_S + FADE_S}"]
    name = f"drawtext=fontfile={fontfile}:text={BRAND.name}:fontsize={round(unit * 0.12)}:fontcolor=white"
    cta = (
        f"drawtext=fontfile={fontfile}:text='{CTA}':fontsize={round(unit * 0.055)}:"
        f"fontcolor=0x111111:box=1:boxcolor=0x{BRAND.palette[1][1:]}:boxborderw={round(unit * 0.03)}"
    )
    graph.append(
        f"[{n}:v]{name}:x=(w-text_w)/2:y=h/2-text_h-{round(unit * 0.03)},"
        f"{cta}:x=(w-text_w)/2:y=h/2+{round(unit * 0.03)},format=yuv420p,setsar=1[card]"
    )

    labels = [f"[v{k}]" for k in range(n)] + ["[card]"]
    previous = labels[0]
    for k, label in enumerate(labels[1:], start=1):
        graph.append(f"{previous}{label}xfade=duration={FADE_S}:offset={k * (clip_s - FADE_S):.3f}[x{k}]")
        previous = f"[x{k}]"

    size = round(unit * 0.06)
    bottom = h * (0.8 if fmt.aspect is Aspect.vertical else 0.9)
    captions = []
    for k, phrase in enumerate(caption_phrases(cut.words)):
        text = work / f"phrase{k:03d}.txt"
        text.write_text(phrase.text)
        captions.append(
            f"drawtext=fontfile={fontfile}:textfile={text}:fontsize={size}:fontcolor=white:borderw={max(2, size // 16)}:"
            f"bordercolor=black:box=1:boxcolor=black@0.6:boxborderw={size // 2}:x=(w-text_w)/2:y={bottom:.0f}-text_h:"
            f"enable='between(t,{phrase.start_s:.3f},{phrase.end_s:.3f})'"
        )
    graph.append(f"{previous}{','.join(captions)}[vout]")

    total = reel_duration([clip_s] * n, FADE_S, CARD_S)
    args += ["-i", str(cut.voice)]
    graph.append(
        f"[{n + 1}:a]aresample={SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,"
        f"apad=whole_dur={total:.3f},atrim=end={total:.3f}[aout]"
    )
    args += ["-filter_complex", ";".join(graph), "-map", "[vout]", "-map", "[aout]"]
    return [*args, *video_codec(), "-fps_mode", "cfr", *AUDIO_CODEC, "-movflags", "+faststart", str(out)]
