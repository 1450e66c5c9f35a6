"""Scene scripts to narrated scene videos: each scene's voice, then its presenter or its B-roll, then its cut."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from cutroom.assets import Asset, AssetSpec, InputRef, Style
from cutroom.boundary import BoundaryError, image_file, quote, read_document
from cutroom.brief import Brand, allowed_roots
from cutroom.capabilities import Capability
from cutroom.channels import SIZES, Aspect, Format
from cutroom.ledger import ledger_for, summarise
from cutroom.lineup import Lineup, Pick
from cutroom.manifest import CampaignStatus
from cutroom.script import (
    Scene,
    SceneResult,
    SceneStatus,
    SceneVoice,
    ScriptError,
    ScriptManifest,
    avatar_spec,
    broll_clip_spec,
    broll_keyframe_spec,
    broll_lengths,
    dialogue_spec,
    line_spec,
    parse_scene_script,
)
from cutroom.settings import settings
from cutroom.storage import open_storage, sha256_file
from providers import declarations, registry
from providers.errors import ProviderError
from providers.protocol import KnowsTalkingPhotos
from tasks.generate import generate
from tasks.limits import ensure_vendor_limits
from tasks.policy import stored
from tasks.publish import publish_script_report
from tasks.script import SceneCut, Video, cut_scenes, join_voice, script_key

T = TypeVar("T")
#: Generates one asset of the scene, through the ledger and the store.
Make = Callable[[AssetSpec], Awaitable[Asset]]

#: The brand a script gets when none is given: its colour fills a presenter card that has no portrait.
STUDIO = Brand(name="Cutroom Studio", palette=["#243B53", "#F0B429", "#FFFFFF"])
#: A scene or a stitched cut is never left out for its length (a reel format's limit does not apply).
NO_LIMIT_S = 24 * 3600.0
#: How much of a failure the manifest keeps: enough to say why, never a whole ffmpeg log.
ERROR_CHARS = 600
#: A `Portrait:` image goes to the avatar vendor as it is: HeyGen takes images up to ~10 MB (heygen.md).
MAX_PORTRAIT_BYTES = 10 * 1024 * 1024


class SceneFailed(Exception):
    def __init__(self, step: str, reason: BaseException):
        self.step = step
        super().__init__(_reason(reason))


def _reason(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__)[:ERROR_CHARS]


@flow(name="script_video", flow_run_name="{campaign_id}")
async def script_video(
    script: str,
    out: str = "cutroom-out",
    campaign_id: str = "script",
    voices: dict[str, str] | None = None,
    force_upload: bool = False,
    providers: dict[str, list[str]] | None = None,
    aspect: Aspect = Aspect.landscape,
    brand: Brand | None = None,
    budget_usd: float = 50.0,
    folder: str | None = None,
) -> ScriptManifest:
    """script → every scene at once (voice → presenter or B-roll → its captioned cut) → all completed scenes
    stitched → campaigns/{campaign_id}/script/manifest.json.

    `script` is the script's text, or the path of a script file; it is read in full, and refused with the line to
    fix, before anything is paid for. `voices` maps a speaker (VO, Maya …) to the speech provider's voice;
    `providers` are preferred providers per capability, as a brief names them; `force_upload` sends media to
    the avatar vendor again instead of reusing what it already holds. A `Portrait:` image is found from `folder`:
    the script file's folder when `script` is a path, else the current one.
    """
    text, found_in = _text_of(script)
    parsed = parse_scene_script(text)
    lineup = registry.lineup(providers or {})
    portraits = _portraits(parsed.scenes, Path(folder or found_in), lineup)
    await _check_presenters(parsed.scenes, lineup)
    named = {s.avatar_provider for s in parsed.scenes if s.avatar_provider}
    await ensure_vendor_limits(lineup.providers() | named)
    run_id = str(flow_run.root_flow_run_id or flow_run.id or "")
    brand = brand or STUDIO
    results = await asyncio.gather(
        *(
            present_scene(
                scene,
                lineup,
                out,
                campaign_id,
                voices=voices or {},
                budget_usd=budget_usd,
                run_id=run_id,
                brand=brand,
                aspect=aspect,
                force_upload=force_upload,
                portrait=portraits.get(scene.id),
            )
            for scene in parsed.scenes
        )
    )
    manifest = ScriptManifest(
        campaign_id=campaign_id,
        status=_status(results),
        run_id=run_id,
        scenes=list(results),
        ledger=summarise(ledger_for(open_storage(out), campaign_id), budget_usd, 0.0, []),
        lineup={c.value: p.entry for c, p in lineup.picks.items()},
    )
    done = [r for r in results if r.status is SceneStatus.complete]
    if done:
        cuts = [_cut_of(r) for r in done]
        try:
            stitched = await stored(
                cut_scenes,
                out,
                "video.mp4",
                cuts,
                _format(aspect),
                brand,
                settings().end_card_s,
                out,
                campaign_id,
            )
            manifest.video = stitched.uri
        except Exception as exc:
            manifest.video_error = _reason(exc)
            manifest.status = CampaignStatus.partial
            get_run_logger().error("the stitched video was left out: %s", manifest.video_error)
    storage = open_storage(out)
    body = manifest.model_dump_json(indent=2).encode()
    storage.put_bytes(script_key(campaign_id, "manifest.json"), body, "application/json", replace=True)
    await publish_script_report(manifest, out)
    return manifest


async def present_scene(
    scene: Scene,
    lineup: Lineup,
    out: str,
    campaign_id: str,
    *,
    voices: dict[str, str],
    budget_usd: float | None,
    run_id: str | None,
    brand: Brand,
    aspect: Aspect = Aspect.landscape,
    force_upload: bool = False,
    portrait: InputRef | None = None,
) -> SceneResult:
    """One scene, start to end: its voice, then its presenter (a `Talking photo:`, or the `portrait` input of its
    `Portrait:` line) or B-roll from its visuals,
    then its captioned video at script/scenes/{slug}.mp4. A failure is returned, never raised: it names the step
    and the vendor's reason, and the scene's other work stays stored for a rerun.

    An avatar story of a campaign calls this with a Scene of its voice-over and presenter.
    """
    result = SceneResult(id=scene.id, title=scene.title, status=SceneStatus.complete)
    style = Style(brand=brand.name, palette=tuple(brand.palette))

    async def make(spec: AssetSpec) -> Asset:
        asset = await stored(
            generate,
            out,
            spec,
            out=out,
            campaign_id=campaign_id,
            story_id=scene.slug,
            budget_usd=budget_usd,
            run_id=run_id,
            force_upload=force_upload,
        )
        result.assets.append(asset)
        return asset

    try:
        # The B-roll's stills need no voice: they are made while it is spoken. Both end before the scene goes on.
        voice_and_stills = (
            _step("speech", _speak(scene, lineup, voices, make, out, campaign_id)),
            _step(
                "keyframe",
                asyncio.gather(
                    *(
                        make(broll_keyframe_spec(scene, visual, lineup[Capability.image], style, aspect))
                        for visual in ([] if scene.presented else scene.visuals)
                    )
                ),
            ),
        )
        voice, stills = await asyncio.gather(*voice_and_stills, return_exceptions=True)
        for outcome in (voice, stills):
            if isinstance(outcome, BaseException):
                raise outcome
        if voice is not None:
            result.audio, result.words = voice.uri, voice.words
        if scene.presented:
            spec = avatar_spec(scene, _presenter(scene, lineup), voice, style, aspect, portrait)
            clips = [await _step("avatar", make(spec))]
        else:
            clips = await _step("b-roll", _shoot(scene, lineup, stills, voice, aspect, make))
        result.clips = [clip.uri for clip in clips]
        video: Video = await _step(
            "scene video",
            stored(
                cut_scenes,
                out,
                f"scenes/{scene.slug}.mp4",
                [_cut_of(result)],
                _format(aspect),
                brand,
                0.0,
                out,
                campaign_id,
            ),
        )
        result.video = video.uri
    except SceneFailed as exc:
        result.status, result.step, result.error = SceneStatus.failed, exc.step, str(exc)
        get_run_logger().error("scene %s failed at %s: %s", scene.id, exc.step, exc)
    return result


async def _speak(
    scene: Scene, lineup: Lineup, voices: dict[str, str], make: Make, out: str, campaign_id: str
) -> SceneVoice | None:
    """The scene's voice as one file: one multi-voice request where the speech model takes a dialogue, else a
    request per line, joined with their word timings moved along."""
    if not scene.dialogue:
        return None
    speech = lineup[Capability.speech]
    card = declarations.vendor(speech.name).card(speech.model, Capability.speech)
    if "dialogue" in card.options and len(scene.speakers) > 1:
        lines = [await make(dialogue_spec(scene, speech, voices))]
    else:
        lines = list(
            await asyncio.gather(*(make(line_spec(line, speech, voices)) for line in scene.dialogue))
        )
    if len(lines) == 1:
        only = lines[0]
        return SceneVoice(
            uri=only.uri, sha256=only.sha256, duration_s=only.duration_s or 0.0, words=only.words
        )
    return await stored(join_voice, out, lines, out, campaign_id, scene.slug)


async def _shoot(
    scene: Scene, lineup: Lineup, stills: list[Asset], voice: SceneVoice | None, aspect: Aspect, make: Make
) -> list[Asset]:
    """B-roll clips from the visuals' keyframes that together last as long as the voice."""
    video = lineup[Capability.video]
    lengths = broll_lengths(voice.duration_s if voice else None, len(stills), video.durations_s)
    takes = [
        broll_clip_spec(
            scene.visuals[i % len(stills)], video, stills[i % len(stills)], length, i // len(stills), aspect
        )
        for i, length in enumerate(lengths)
    ]
    return list(await asyncio.gather(*(make(spec) for spec in takes)))


async def _step(name: str, work: Awaitable[T]) -> T:
    try:
        return await work
    except SceneFailed:
        raise
    except Exception as exc:
        raise SceneFailed(name, exc) from exc


async def _check_presenters(scenes: tuple[Scene, ...], lineup: Lineup) -> None:
    """A presenter on a provider that makes no avatars, or a talking photo its account does not hold, is refused
    by its line before anything is paid for. A provider's list that cannot be read now (a passing fault) leaves
    its photos to be checked by the vendor, scene by scene."""
    known = registry.known(Capability.avatar)
    presented: dict[str, list[Scene]] = {}
    for scene in scenes:
        if scene.avatar_provider and scene.avatar_provider not in known:
            raise ScriptError(
                scene.presenter_line or scene.line,
                f"talking photo provider '{scene.avatar_provider}' makes no avatars; known: {', '.join(known)}",
            )
        if scene.talking_photo:
            name = scene.avatar_provider or lineup[Capability.avatar].name
            presented.setdefault(name, []).append(scene)
    for name, wanted in presented.items():
        adapter = registry.provider(Capability.avatar, name)
        if not isinstance(adapter, KnowsTalkingPhotos):
            continue
        try:
            held = await asyncio.to_thread(adapter.talking_photos)
        except ProviderError as exc:
            if not exc.kind.transient:
                raise
            get_run_logger().warning("%s's talking photos could not be listed: %s", name, exc)
            continue
        for scene in wanted:
            if scene.talking_photo not in held:
                raise ScriptError(
                    scene.presenter_line or scene.line,
                    f"talking photo {quote(scene.talking_photo or '', 60)} is not in the {name} account "
                    f"({len(held)} talking photos there); check its id",
                )


def _presenter(scene: Scene, lineup: Lineup) -> Pick:
    """The avatar model that presents a scene: its provider's (the script's, else the lineup's) default, or, for a
    portrait that model cannot animate, the provider's first model that can (HeyGen: avatar-iv)."""
    name = scene.avatar_provider or lineup[Capability.avatar].name
    chosen = registry.pick(Capability.avatar, name)
    if scene.portrait is None or "portrait" in chosen.inputs:
        return chosen
    cards = declarations.vendor(name).cards(Capability.avatar)
    animates = next((c for c in cards if "portrait" in c.inputs and not c.retired), None)
    if animates is None:
        raise ScriptError(scene.presenter_line or scene.line, f"{name} makes no presenter from a portrait")
    return registry.pick(Capability.avatar, name, animates.model)


def _portraits(scenes: tuple[Scene, ...], folder: Path, lineup: Lineup) -> dict[str, InputRef]:
    """Each `Portrait:` image as the avatar's portrait input, by scene id: an image beside the script (or under an
    allowed root) within MAX_PORTRAIT_BYTES, on a provider that animates one; else refused by its line before
    anything is paid for."""
    portraits, roots = {}, allowed_roots(folder)
    for scene in scenes:
        if scene.portrait is None:
            continue
        _presenter(scene, lineup)  # a provider that animates no portrait is refused now, not after the voice
        try:
            path = image_file(scene.portrait, "the portrait", "script", folder, roots, MAX_PORTRAIT_BYTES)
        except BoundaryError as exc:
            raise ScriptError(scene.presenter_line or scene.line, str(exc)) from None
        portraits[scene.id] = InputRef(role="portrait", uri=path.as_uri(), sha256=sha256_file(path))
    return portraits


def _text_of(script: str) -> tuple[str, Path]:
    """A script's text and the folder its files are found from: read (bounded, strict UTF-8) from the file it
    names, and that file's folder; or given as it is, and the current folder."""
    if "\n" not in script and len(script) < 4096 and Path(script).is_file():
        return read_document(Path(script), "script"), Path(script).resolve().parent
    return script, Path.cwd()


def _format(aspect: Aspect) -> Format:
    width, height = SIZES[aspect]
    return Format(aspect=aspect, width=width, height=height, max_duration_s=NO_LIMIT_S)


def _cut_of(result: SceneResult) -> SceneCut:
    return SceneCut(scene=result.id, clips=result.clips, voice=result.audio, words=result.words)


def _status(results: list[SceneResult]) -> CampaignStatus:
    complete = sum(r.status is SceneStatus.complete for r in results)
    if complete == len(results):
        return CampaignStatus.complete
    return CampaignStatus.partial if complete else CampaignStatus.failed
