"""From a planned story to generation requests: what to ask each provider for."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cutroom.assets import AssetKind, AssetSpec, InputRef, Style
from cutroom.brief import Brief
from cutroom.channels import SIZES, primary_format
from cutroom.plan import Shot, Story
from cutroom.storage import sha256_bytes, sha256_file

CLIP_FPS = 24


def style(brief: Brief, headline: str) -> Style:
    logo = sha256_file(brief.brand.logo) if brief.brand.logo else None
    return Style(
        brand=brief.brand.name, palette=tuple(brief.brand.palette), headline=headline, logo_sha256=logo
    )


def style_reference(brief: Brief) -> tuple[InputRef, ...]:
    """The brand's style reference as a `style_reference` input: a link as it is, a file by its content."""
    reference = brief.brand.style_reference
    if reference is None:
        return ()
    if reference.startswith(("http://", "https://")):
        return (
            InputRef(
                role="style_reference", uri=reference, url=reference, sha256=sha256_bytes(reference.encode())
            ),
        )
    path = Path(reference)
    return (InputRef(role="style_reference", uri=path.as_uri(), sha256=sha256_file(path)),)


def keyframe_spec(
    story: Story, brief: Brief, provider: str, model: str, prompt: str, follows_style: bool = True
) -> AssetSpec:
    """A still carries its headline; a moving story's keyframe stays clean for the clip's reveal and captions.
    It follows the brand's style reference, when the brief has one and the model takes one."""
    fmt = primary_format(story.channel)
    return AssetSpec(
        kind=AssetKind.image,
        provider=provider,
        model=model,
        prompt=prompt,
        aspect=fmt.aspect,
        width=fmt.width,
        height=fmt.height,
        style=style(brief, "" if story.moving else story.copy_.headline),
        inputs=style_reference(brief) if follows_style else (),
        seed=story_seed(story.id),
    )


def story_seed(story_id: str) -> int:
    """A stable seed of the story's own: stories whose prompts read alike still get images of their own, and
    never share one generation by accident."""
    return int.from_bytes(hashlib.sha256(story_id.encode()).digest()[:4], "big")


def clip_spec(
    shot: Shot, brief: Brief, provider: str, model: str, start: InputRef, durations_s: tuple[float, ...] = ()
) -> AssetSpec:
    """A shot as a clip request; its length snaps to the nearest one the model makes (ties go longer)."""
    width, height = SIZES[shot.aspect]
    duration = (
        min(durations_s, key=lambda d: (abs(d - shot.duration_s), -d)) if durations_s else shot.duration_s
    )
    return AssetSpec(
        kind=AssetKind.video,
        provider=provider,
        model=model,
        prompt=shot.prompt,
        aspect=shot.aspect,
        width=width,
        height=height,
        duration_s=duration,
        fps=CLIP_FPS,
        camera_motion=shot.camera_motion,
        style=style(brief, shot.caption),
        inputs=(start,),
    )


def voice_spec(story: Story, provider: str, model: str, voice: str | None = None) -> AssetSpec:
    return AssetSpec(
        kind=AssetKind.speech, provider=provider, model=model, prompt=story.voice_over, voice=voice
    )


def presenter_spec(story: Story, brief: Brief, provider: str, model: str, portrait: InputRef, voice: InputRef,
                   duration_s: float | None) -> AssetSpec:  # fmt: skip
    """An avatar story's presenter: its keyframe as the face, speaking its voice-over, at its channel's format."""
    fmt = primary_format(story.channel)
    return AssetSpec(
        kind=AssetKind.avatar,
        provider=provider,
        model=model,
        prompt=story.voice_over,
        aspect=fmt.aspect,
        width=fmt.width,
        height=fmt.height,
        duration_s=duration_s,
        style=style(brief, story.copy_.headline),
        inputs=(voice, portrait),
    )
