"""Whose campaign a folder is. A campaign id names one campaign: a run into a folder that holds a different one
(another name, or another brand) refuses, unless it is asked to resume that campaign — so two campaigns whose
names give the same id never overwrite each other's manifest or reuse each other's assets."""

from __future__ import annotations

import json

from pydantic import BaseModel

from cutroom.boundary import quote
from cutroom.brief import Brief
from cutroom.storage import Storage, campaign_prefix


class Owner(BaseModel, frozen=True):
    campaign: str
    brand: str


class FolderTaken(Exception):
    """The campaign's folder holds another campaign."""


def claim_key(campaign_id: str) -> str:
    return f"{campaign_prefix(campaign_id)}/campaign.json"


def _manifest_owner(storage: Storage, campaign_id: str) -> Owner | None:
    """The owner a folder made before claims were written shows in its manifest."""
    key = f"{campaign_prefix(campaign_id)}/manifest.json"
    if not storage.exists(key):
        return None
    brief = json.loads(storage.read_bytes(key)).get("brief", {})
    return Owner(campaign=brief.get("campaign", ""), brand=brief.get("brand", {}).get("name", ""))


def claim(storage: Storage, brief: Brief, resume: bool = False) -> None:
    """Make the campaign's folder this brief's, or refuse: it holds another campaign and no resume was asked."""
    mine = Owner(campaign=brief.campaign, brand=brief.brand.name)
    key = claim_key(brief.campaign_id)
    if storage.exists(key):
        holder: Owner | None = Owner.model_validate_json(storage.read_bytes(key))
    else:
        holder = _manifest_owner(storage, brief.campaign_id)
    if holder is not None and holder != mine and not resume:
        raise FolderTaken(
            f"the folder campaigns/{brief.campaign_id} holds the campaign {quote(holder.campaign)} of "
            f"{quote(holder.brand)}, not {quote(mine.campaign)} of {quote(mine.brand)}: give this brief its own id "
            "(--campaign-id, or 'id:' in the brief), or resume that campaign (--resume)"
        )
    if holder is None:
        storage.put_bytes(key, mine.model_dump_json().encode(), "application/json", replace=True)
