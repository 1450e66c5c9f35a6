"""The rule planner's PRD: the brief restated for the team, with targets and risks a rule can see.

Internal, so it quotes the brief; long brief text is shortened to fit the PRD's bounded fields.
"""

from __future__ import annotations

from collections import Counter

from cutroom.avoid import avoided_in, without
from cutroom.brief import Brief
from cutroom.plan import Story
from cutroom.prd import ChannelPlan, Kpi, Prd
from providers.local.copywriting import Pitch, sentence
from providers.local.phrasebook import CHANNEL_NAMES

#: Rough vendor rates (the middle of providers/*.toml's price cards), enough to tell a tight budget.
VIDEO_USD_PER_SECOND = 0.10
KEYFRAME_USD = 0.08
#: Refinement rounds redo assets; a budget under this multiple of one pass's cost is tight.
HEADROOM = 2.0

#: What each channel's stories do for the campaign.
ROLES = {
    "tiktok": "Vertical video that hooks in the first second: reach and discovery, one idea per clip.",
    "instagram": "Reels and posts in 9:16 and 1:1 that show the offer in use, with '{cta}' on the last frame.",
    "youtube": "16:9 video with a spoken voice-over that makes the full case for {offer}.",
    "linkedin": "Professional posts and designs that give the business case for {offer}.",
    "x": "Short posts with a bold still: conversation and quick clicks to '{cta}'.",
    "facebook": "Square posts and video made to be shared with friends and local groups.",
    "email": "A subject line that earns the open, a fuller body, and one button: '{cta}'.",
}


def write_prd(brief: Brief, pitch: Pitch, stories: list[Story]) -> Prd:
    goal, audience = _short(_clean(brief.goal, brief), 240), _short(_clean(brief.audience, brief), 200)
    channels = ", ".join(CHANNEL_NAMES[c] for c in brief.channels)
    when = f" ({_short(brief.timeline, 80)})" if brief.timeline else ""
    subject = f"{pitch.brand}'s {pitch.offer}"
    summary = (
        f"{_short(brief.campaign, 120)} for {_short(pitch.brand, 80)}. Goal: {sentence(goal)} "
        f"Audience: {audience}. {len(stories)} stories across {channels}{when}, leading with {subject} "
        f"and one action: '{pitch.cta}'."
    )
    return Prd(
        summary=_short(summary, 800),
        objectives=[
            sentence(goal),
            f"Reach {audience} on {channels}.",
            f"Ask for one action everywhere: '{pitch.cta}'.",
            f"Every asset at quality {brief.quality_target:g} or above, within ${brief.budget_usd:,.2f}.",
        ],
        key_messages=[m for m in (pitch.promise(), *(pitch.payoff(n) for n in range(3))) if m]
        + [f"Call to action: {pitch.cta}"],
        audience_insights=[
            pitch.reader.insight,
            f"Spoken to as 'you', in the brand's voice ({_short(brief.brand.voice, 120)}), never in the brief's words.",
            f"Where they are: {channels}.",
        ],
        channel_strategy=[_channel_plan(channel.value, pitch, stories) for channel in brief.channels],
        kpis=_kpis(brief, pitch, stories),
        risks=_risks(brief, pitch, stories),
    )


def _channel_plan(channel: str, pitch: Pitch, stories: list[Story]) -> ChannelPlan:
    types = Counter(s.type.value for s in stories if s.channel == channel)
    role = ROLES[channel].format(cta=pitch.cta, offer=f"{pitch.brand}'s {pitch.offer}")
    if not types:
        return ChannelPlan(
            channel=channel, strategy=f"{role} No story planned yet: raise `stories` to cover it."
        )
    made = ", ".join(f"{n} {kind}" for kind, n in types.items())
    return ChannelPlan(channel=channel, strategy=f"{role} Planned: {made}.")


def _kpis(brief: Brief, pitch: Pitch, stories: list[Story]) -> list[Kpi]:
    """The goal's own count, scaled from the production budget as a starting point, then what Cutroom checks."""
    by = f"by the end of {_short(brief.timeline, 80)}" if brief.timeline else "within 4 weeks of launch"
    target = _round(max(10.0, brief.budget_usd * pitch.kind.per_usd))
    kpis = [Kpi(name=pitch.kind.result, target=f"{target:,} {by}")]
    if pitch.kind.name == "awareness":
        moving = any(s.moving for s in stories)
        kpis.append(
            Kpi(name="Video completion rate", target="25% or more")
            if moving
            else Kpi(name="Engagement rate", target="2% or more")
        )
    else:
        rates = ["1.5% or more on social"] + (["3% or more on email"] if "email" in brief.channels else [])
        kpis.append(Kpi(name=f"Click-through to '{pitch.cta}'", target=", ".join(rates)))
    kpis += [
        Kpi(
            name="Stories passing review",
            target=f"{len(stories)} of {len(stories)} at quality {brief.quality_target:g} or above",
        ),
        Kpi(name="Production spend", target=f"at most ${brief.budget_usd:,.2f}"),
    ]
    return kpis


def _risks(brief: Brief, pitch: Pitch, stories: list[Story]) -> list[str]:
    risks = []
    if brief.brand.avoid:
        words = ", ".join(f"'{w}'" for w in brief.brand.avoid[:8])
        said = avoided_in(f"{brief.goal} {brief.audience}", brief.brand.avoid)
        note = f"; the brief itself uses {', '.join(repr(w) for w in said)}" if said else ""
        risks.append(_short(f"Words the brand avoids ({words}) must stay out of every line{note}.", 300))
    if pitch.category.caution:
        risks.append(pitch.category.caution)
    seconds = sum(s.duration_s for s in stories)
    one_pass = seconds * VIDEO_USD_PER_SECOND + len(stories) * KEYFRAME_USD
    if brief.budget_usd < one_pass * HEADROOM:
        risks.append(
            f"Tight budget: ${brief.budget_usd:,.2f} for {len(stories)} stories and {seconds:g} s of video; "
            f"one pass on vendors costs about ${one_pass:,.2f} before refinement, and the ledger refuses "
            "submits past the cap."
        )
    uncovered = [CHANNEL_NAMES[c] for c in brief.channels if not any(s.channel == c for s in stories)]
    if uncovered:
        risks.append(f"No story for {', '.join(uncovered)}: the brief asks for fewer stories than channels.")
    if not brief.timeline:
        risks.append("No timeline in the brief: KPI dates count from launch.")
    return risks


def _clean(text: str, brief: Brief) -> str:
    return without(text, brief.brand.avoid)


def _short(text: str, limit: int) -> str:
    """The text, cut at a word boundary to fit a bounded PRD field."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _round(value: float) -> int:
    """A target a person would write: two significant figures."""
    digits = max(len(str(int(value))) - 2, 0)
    return int(round(value, -digits))
