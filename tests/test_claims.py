"""A campaign id names one campaign: a second campaign never overwrites a first one's folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cutroom.brief import parse_brief
from cutroom.claims import FolderTaken, claim
from cutroom.storage import open_storage
from tests.helpers import cutroom
from tests.test_brief import GOOD


def test_a_folder_holding_another_campaign_is_refused_unless_resumed(tmp_path):
    storage = open_storage(str(tmp_path))
    first = parse_brief({**GOOD, "id": "spring"})
    claim(storage, first)
    claim(
        storage, first.model_copy(update={"goal": "sell more of the spring collection"})
    )  # the same campaign
    other = parse_brief({**GOOD, "id": "spring", "campaign": "Autumn Drop"})
    with pytest.raises(FolderTaken, match="holds the campaign 'Spring Drop' of 'Fern', not 'Autumn Drop'"):
        claim(storage, other)
    claim(storage, other, resume=True)  # asked to go on with it
    assert json.loads((tmp_path / "campaigns/spring/campaign.json").read_text())["campaign"] == "Spring Drop"


def test_a_folder_an_earlier_version_made_is_claimed_by_its_manifest(tmp_path):
    folder = tmp_path / "campaigns" / "spring"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(
        json.dumps({"brief": {"campaign": "Old One", "brand": {"name": "Fern"}}})
    )
    with pytest.raises(FolderTaken):
        claim(open_storage(str(tmp_path)), parse_brief({**GOOD, "id": "spring"}))


def test_cutroom_run_refuses_a_taken_folder_before_anything_is_made(tmp_path: Path):
    out = tmp_path / "out"
    (out / "campaigns" / "spring").mkdir(parents=True)
    (out / "campaigns" / "spring" / "campaign.json").write_text(
        '{"campaign": "Autumn Drop", "brand": "Fern"}'
    )
    brief = tmp_path / "brief.yaml"
    brief.write_text(yaml.safe_dump({**GOOD, "id": "spring"}))
    result = cutroom("run", str(brief), "--out", str(out))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "holds the campaign 'Autumn Drop' of 'Fern', not 'Spring Drop'" in result.stderr
    assert sorted(p.name for p in (out / "campaigns" / "spring").iterdir()) == ["campaign.json"]


def test_non_latin_names_no_longer_share_one_folder(tmp_path):
    storage = open_storage(str(tmp_path))
    for name in ("春の新作", "夏の新作", "Весна"):
        claim(storage, parse_brief({**GOOD, "campaign": name}))  # each its own folder: none refused
    assert len(list((tmp_path / "campaigns").iterdir())) == 3
