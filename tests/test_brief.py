"""A bad brief fails before anything is made, naming every wrong field in plain words."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cutroom.brief import BriefError, load_brief, parse_brief

ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "campaign": "Spring Drop",
    "brand": {"name": "Fern", "palette": ["#224422", "#F0E68C"]},
    "goal": "sell the spring collection",
    "audience": "gardeners",
    "channels": ["instagram"],
}


def problems(**changes) -> list[str]:
    data = {**GOOD, **changes}
    with pytest.raises(BriefError) as caught:
        parse_brief({k: v for k, v in data.items() if v is not ...})
    return caught.value.problems


def test_examples_are_valid_briefs():
    for path in (ROOT / "examples" / "briefs").iterdir():
        brief = load_brief(path)
        assert brief.channels and brief.brand.palette


def test_defaults_fill_what_a_brief_leaves_out():
    brief = parse_brief(GOOD)
    assert (brief.quality_target, brief.max_iterations, brief.stories) == (85, 5, None)
    assert brief.campaign_id == "spring-drop"


@pytest.mark.parametrize("field", ["campaign", "brand", "goal", "audience", "channels"])
def test_each_missing_required_field_is_named(field):
    found = problems(**{field: ...})
    assert len(found) == 1 and f"'{field}' is missing" in found[0]


def test_every_problem_is_reported_at_once():
    found = problems(
        campaign="",
        channels=["tiktok", "myspace"],
        budget_usd=-5,
        quality_target=120,
        max_iterations=0,
        colour="blue",
    )
    text = "\n".join(found)
    assert len(found) == 6
    assert "'campaign' is empty" in text
    assert "'channels[2]' is 'myspace'" in text and "tiktok" in text
    assert "'budget_usd' is -5; it must be at least 0" in text
    assert "'quality_target' is 120; it must be at most 100" in text
    assert "'max_iterations' is 0; it must be at least 1" in text
    assert "'colour' is not a brief field" in text


def test_palette_must_be_hex_colours():
    found = problems(brand={"name": "Fern", "palette": ["green", "#12345G", "#abcdef"]})
    assert found == ["'brand.palette': colours must be hex codes like #1A2B3C; these are not: green, #12345G"]


def test_empty_palette_and_brand_name():
    text = "\n".join(problems(brand={"name": "", "palette": []}))
    assert "'brand.name' is empty" in text and "'brand.palette' is empty" in text


def test_numbers_given_as_words():
    assert problems(budget_usd="lots") == ["'budget_usd' must be a number, not 'lots'"]


def test_unknown_provider_capability():
    assert "unknown capability music" in problems(providers={"music": ["suno"]})[0]


def test_campaign_id_must_be_folder_safe():
    assert "'id' is 'Bad Id!'" in problems(id="Bad Id!")[0]


def test_unknown_brand_field_is_named():
    found = problems(brand={"name": "Fern", "palette": ["#224422"], "font": "Arial"})
    assert found == [
        "'brand.font' is not a brief field; check its spelling (see the brief format in README.md)"
    ]


def test_file_problems(tmp_path):
    with pytest.raises(BriefError, match="no brief file"):
        load_brief(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("campaign: [unclosed\n")
    with pytest.raises(BriefError, match="not valid YAML near line"):
        load_brief(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(BriefError, match="must be a mapping"):
        load_brief(listing)
    bad_json = tmp_path / "b.json"
    bad_json.write_text("{nope")
    with pytest.raises(BriefError, match="not valid JSON"):
        load_brief(bad_json)


def test_logo_must_exist_and_resolves_beside_the_brief(tmp_path):
    data = {**GOOD, "brand": {**GOOD["brand"], "logo": "logo.png"}}
    path = tmp_path / "brief.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BriefError, match="'brand.logo' points to logo.png, which does not exist"):
        load_brief(path)
    (tmp_path / "logo.png").write_bytes(b"\x89PNG")
    assert load_brief(path).brand.logo == (tmp_path / "logo.png").resolve()
