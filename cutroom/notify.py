"""News a person acts on — a review waiting, a campaign ended — posted to a webhook and a Prefect notification block.

A notice carries ids, a status and what to do, never a key or a link with credentials: it leaves for chat rooms
and inboxes. A notice that cannot be sent is logged and dropped; it never fails the campaign it reports on.
"""

from __future__ import annotations

import inspect
import logging
from enum import StrEnum

import httpx
from pydantic import BaseModel, Field

from cutroom.manifest import CampaignStatus, Manifest
from cutroom.report import report_key
from cutroom.settings import settings
from cutroom.storage import open_storage

log = logging.getLogger(__name__)

#: A webhook that has not answered by then is given up on: the campaign does not wait for a chat room.
WEBHOOK_TIMEOUT_S = 10.0


class Event(StrEnum):
    review_waiting = "review_waiting"
    campaign_ended = "campaign_ended"


class Notice(BaseModel):
    event: Event
    campaign_id: str
    flow_run_id: str
    status: str = Field(default="", description="The campaign's status when it ended.")
    todo: str = Field(description="What the person who reads it should do, in words.")

    @property
    def subject(self) -> str:
        return f"Cutroom: {self.campaign_id} — {self.event.value.replace('_', ' ')}"


async def notify(notice: Notice) -> None:
    """Send the notice to CUTROOM_NOTIFY_URL (JSON POST) and CUTROOM_NOTIFY_BLOCK (a Prefect notification block
    by `type-slug/name`), each where configured."""
    config = settings()
    if config.notify_url is not None:
        await _post(config.notify_url.get_secret_value(), notice)
    if config.notify_block:
        await _to_block(config.notify_block, notice)


async def _post(url: str, notice: Notice) -> None:
    try:
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S) as client:
            response = await client.post(url, json=notice.model_dump(mode="json"))
        if response.is_error:
            log.warning(
                "the %s notice was not taken: the webhook answered %s", notice.event, response.status_code
            )
    except httpx.HTTPError as exc:  # its message names the URL, which may hold a token: log its kind only
        log.warning("the %s notice was not sent: %s", notice.event, type(exc).__name__)


async def _to_block(name: str, notice: Notice) -> None:
    from prefect.blocks.core import Block

    try:
        block = await Block.aload(name)
        sent = block.notify(notice.todo, notice.subject)
        if inspect.isawaitable(sent):
            await sent
    except Exception as exc:  # a missing block or a refusing service must not fail the campaign
        log.warning("the %s notice did not reach block %s: %s", notice.event, name, type(exc).__name__)


def campaign_ended(manifest: Manifest, out: str) -> Notice:
    report = open_storage(out).uri(report_key(manifest.campaign_id))
    return Notice(
        event=Event.campaign_ended,
        campaign_id=manifest.campaign_id,
        flow_run_id=manifest.run_id or "",
        status=manifest.status.value,
        todo=f"{manifest.campaign} ended {manifest.status.value}: open its report, {report}",
    )


def campaign_failed(campaign_id: str, flow_run_id: str, why: str) -> Notice:
    """The notice for a campaign that stopped on an error before its manifest: what stopped it and what is kept."""
    return Notice(
        event=Event.campaign_ended,
        campaign_id=campaign_id,
        flow_run_id=flow_run_id,
        status=CampaignStatus.failed.value,
        todo=f"{campaign_id} stopped on an error ({why}); what it made is kept: fix the cause and run it "
        "again, or read the flow run's logs in Prefect",
    )
