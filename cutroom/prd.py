"""The campaign PRD: what the campaign is for and how it will be judged, written before any story is made.

A language-model planner writes it from the brief; the rule planner writes a plainer one offline. It is shown by
`cutroom plan`, published as a Prefect artifact, kept in the manifest (`prd`) and printed in the report.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from cutroom.boundary import text

#: A language model's answer is a way in like any other: its text is trimmed, clean and bounded.
Line = text(300, 1)
Paragraph = text(800, 1)


class Kpi(BaseModel):
    name: Line = Field(description="What is measured, e.g. 'Accounts opened from the campaign'.")
    target: Line = Field(description="The number to reach and by when, e.g. '2,000 in 6 weeks'.")


class ChannelPlan(BaseModel):
    channel: Line
    strategy: Paragraph = Field(description="What this channel's stories do for the goal.")


class Prd(BaseModel):
    summary: Paragraph = Field(description="The campaign in two or three sentences.")
    objectives: list[Line] = Field(min_length=1, max_length=8)
    key_messages: list[Line] = Field(min_length=1, max_length=8)
    audience_insights: list[Line] = Field(min_length=1, max_length=8)
    channel_strategy: list[ChannelPlan] = Field(min_length=1, max_length=12)
    kpis: list[Kpi] = Field(min_length=1, max_length=8)
    risks: list[Line] = Field(default_factory=list, max_length=8)

    def markdown(self, title: str) -> str:
        """The PRD as a page: the Prefect artifact, `cutroom plan` and the report all show this text."""
        lines = [f"# {title}: campaign PRD", "", self.summary, ""]
        for heading, items in (
            ("Objectives", self.objectives),
            ("Key messages", self.key_messages),
            ("Audience insights", self.audience_insights),
        ):
            lines += [f"## {heading}", "", *(f"- {item}" for item in items), ""]
        lines += [
            "## Channel strategy",
            "",
            *(f"- **{c.channel}**: {c.strategy}" for c in self.channel_strategy),
            "",
        ]
        lines += [
            "## KPIs",
            "",
            "| KPI | Target |",
            "|---|---|",
            *(f"| {k.name} | {k.target} |" for k in self.kpis),
            "",
        ]
        if self.risks:
            lines += ["## Risks", "", *(f"- {risk}" for risk in self.risks), ""]
        return "\n".join(lines)
