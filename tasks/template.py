"""A story's brand template render: its copy, keyframe, first clip and voice filled into a template.

The render is one more asset of the story, made by the generate task: cached on its spec, journaled and paid once
under the campaign's ledger, stored under the story's `renders/` like any asset. On S3 its inputs reach a vendor
that fetches them (Creatomate) as presigned links; on local storage such a vendor refuses before anything is paid.
"""

from __future__ import annotations

from cutroom.assets import Asset, AssetKind, AssetSpec, InputRef
from cutroom.brief import Brief
from cutroom.capabilities import Capability
from cutroom.channels import primary_format
from cutroom.lineup import Pick
from cutroom.manifest import StoryResult
from cutroom.plan import Story
from cutroom.specs import style
from providers import registry
from tasks.generate import generate
from tasks.policy import stored


def template_spec(
    story: Story, made: StoryResult, brief: Brief, pick: Pick, template_id: str | None = None
) -> AssetSpec:
    """The template request of a story: its headline as the prompt, its body and call to action as options, its
    keyframe, first clip and voice (those it has) as the image, clip and voice inputs, at its channel's format.
    The render lasts as long as the voice, else the clip: its duration prices it before it is made."""
    fmt = primary_format(story.channel)
    media = {"image": made.keyframe, "clip": made.clips[0] if made.clips else None, "voice": made.voice}
    inputs = tuple(
        InputRef(role=role, uri=asset.uri, sha256=asset.sha256) for role, asset in media.items() if asset
    )
    timed = made.voice or (made.clips[0] if made.clips else None)
    copy = story.copy_
    options = {"headline": copy.headline, "body": copy.body, "cta": copy.cta}
    if template_id:
        options["template_id"] = template_id
    return AssetSpec(
        kind=AssetKind.template,
        provider=pick.name,
        model=registry.model_for(Capability.template, pick.name, pick.model or None),
        prompt=copy.headline,
        aspect=fmt.aspect,
        width=fmt.width,
        height=fmt.height,
        duration_s=round(timed.duration_s, 2) if timed and timed.duration_s else None,
        style=style(brief, copy.headline),
        inputs=inputs,
        options={k: v for k, v in options.items() if v},
    )


async def render_story_template(
    story: Story,
    made: StoryResult,
    brief: Brief,
    pick: Pick,
    out: str,
    template_id: str | None = None,
    run_id: str | None = None,
) -> Asset:
    """Render the story's template on `pick` once: a rerun gets the stored render back (cache, then ledger)."""
    spec = template_spec(story, made, brief, pick, template_id)
    return await stored(
        generate, out, spec, out, brief.campaign_id, story.id, budget_usd=brief.budget_usd, run_id=run_id
    )
