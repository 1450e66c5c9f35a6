"""A bad brief fails before anything is made, naming every wrong field in plain words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from PIL import Image

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
    assert found == [
        "'brand.palette': colours must be hex codes like #1A2B3C; these are not: 'green', '#12345G'"
    ]


def test_empty_palette_and_brand_name():
    text = "\n".join(problems(brand={"name": "", "palette": []}))
    assert "'brand.name' is empty" in text and "'brand.palette' is empty" in text


def test_numbers_given_as_words():
    assert problems(budget_usd="lots") == ["'budget_usd' must be a number, not 'lots'"]


def test_unknown_provider_capability():
    assert "unknown capability 'music'" in problems(providers={"music": ["suno"]})[0]


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
    with pytest.raises(BriefError, match="'brand.logo' points to 'logo.png', which does not exist"):
        load_brief(path)
    Image.new("RGB", (8, 8)).save(tmp_path / "logo.png")
    assert load_brief(path).brand.logo == (tmp_path / "logo.png").resolve()


# -- the input boundary (issue 15): each of these was a crash, a hang, a leak or a silent wrong answer ----------


def brief_file(tmp_path: Path, text: str, name: str = "brief.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    with pytest.raises(BriefError) as caught:
        load_brief(path)
    message = str(caught.value)
    assert len(message) <= 2048, len(message)
    return message


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = brief_file(tmp_path, "\n".join(lines) + "\ncampaign: *a8\n")
    assert path.stat().st_size < 1024
    assert "more than 50 YAML aliases" in refusal(path)


def test_a_huge_value_is_quoted_in_eighty_characters(tmp_path):
    found = problems(campaign="Q" * 10_000)
    assert found == ["'campaign' has 10000 characters; at most 80"]
    data = {**GOOD, "goal": 7, "channels": ["x" * 5000]}
    text = "\n".join(problems(**{k: v for k, v in data.items() if k != "campaign"}, campaign="ok"))
    assert "'goal': must be text, not the number 7" in text and "'" + "x" * 79 + "…'" in text
    assert len(text) < 600


def test_a_brief_plans_up_to_ten_thousand_stories():
    assert parse_brief({**GOOD, "stories": 10_000}).stories == 10_000
    assert problems(stories=10_001) == ["'stories' is 10001; it must be at most 10000"]


def test_a_brief_over_its_size_cap_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.yaml"
    with path.open("w") as file:
        file.write("campaign: big\ngoal: |\n")
        file.write(("  " + "y" * 1000 + "\n") * 50_000)  # 50 MB
    assert f"is {path.stat().st_size / 1024:.0f} KB; a brief file is at most 64 KB" in refusal(path)


@pytest.mark.parametrize("value", ["1e309", ".inf", "-.inf", ".nan"])
def test_a_budget_must_be_a_finite_number(tmp_path, value):
    path = brief_file(tmp_path, yaml.safe_dump(GOOD) + f"budget_usd: {value}\n")
    assert "'budget_usd' must be a finite number" in refusal(path)


def test_json_infinity_and_nan_are_refused(tmp_path):
    path = brief_file(tmp_path, '{"campaign": "x", "budget_usd": Infinity}', "brief.json")
    assert "Infinity is not a number a brief can hold" in refusal(path)


def test_duplicate_keys_are_refused_with_their_line(tmp_path):
    path = brief_file(tmp_path, yaml.safe_dump(GOOD) + "goal: sell winter coats\n")
    line = yaml.safe_dump(GOOD).count("\n") + 1
    assert f"'goal' is given twice (line {line})" in refusal(path)
    json_path = brief_file(tmp_path, '{"campaign": "a", "campaign": "b"}', "brief.json")
    assert "'campaign' is given twice" in refusal(json_path)


def test_blank_and_control_character_text_is_refused():
    assert problems(audience="   ") == ["'audience' is empty (who the campaign speaks to.)"]
    bell = problems(goal="sell boots\x07 now")[0]
    assert bell == "'goal': holds a control character (U+0007); remove it"
    spoof = problems(campaign="Sale \u202eevil")[0]
    assert "U+202E" in spoof


def test_messages_say_what_is_really_wrong(tmp_path):
    assert problems(goal="ab") == ["'goal' is too short: at least 3 characters"]
    assert parse_brief({**GOOD, "quality_target": 85.5}).quality_target == 85.5
    folder = tmp_path / "a-folder.yaml"
    folder.mkdir()
    assert "a-folder.yaml is a folder, not a brief file" in refusal(folder)
    logo = problems(brand={**GOOD["brand"], "logo": "https://cdn.example.com/logo.png"})[0]
    assert "'https://cdn.example.com/logo.png'" in logo  # never shown as http:/


def test_a_brief_that_is_not_utf8_says_so(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(yaml.safe_dump({**GOOD, "goal": "sell crème"}, allow_unicode=True).encode("latin-1"))
    assert "is not UTF-8 text (byte" in refusal(path)


def test_a_logo_that_is_not_an_image_is_refused_before_anything_is_made(tmp_path):
    (tmp_path / "logo.png").write_text("not a picture")
    path = brief_file(tmp_path, yaml.safe_dump({**GOOD, "brand": {**GOOD["brand"], "logo": "logo.png"}}))
    assert "'brand.logo' points to 'logo.png', which is not a PNG, JPEG or WebP image" in refusal(path)


@pytest.mark.parametrize("field", ["logo", "style_reference"])
def test_brief_files_come_only_from_the_brief_s_folder(tmp_path, field):
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (8, 8)).save(outside / "secret.png")
    home = tmp_path / "brief"
    home.mkdir()
    (home / "link.png").symlink_to(outside / "secret.png")
    for given in ("../outside/secret.png", str(outside / "secret.png"), "link.png"):
        path = brief_file(home, yaml.safe_dump({**GOOD, "brand": {**GOOD["brand"], field: given}}))
        message = refusal(path)
        assert (
            f"'brand.{field}' points to '{given[:60]}" in message and "outside the brief's folder" in message
        )


def test_an_allowed_root_widens_where_brief_files_may_come_from(tmp_path, monkeypatch):
    shared = tmp_path / "brand-assets"
    shared.mkdir()
    Image.new("RGB", (8, 8)).save(shared / "logo.png")
    home = tmp_path / "brief"
    home.mkdir()
    path = brief_file(
        home, yaml.safe_dump({**GOOD, "brand": {**GOOD["brand"], "logo": str(shared / "logo.png")}})
    )
    monkeypatch.setenv("CUTROOM_ALLOWED_ROOTS", f'["{shared}"]')
    assert load_brief(path).brand.logo == shared / "logo.png"


def test_campaign_names_in_any_script_get_folders_of_their_own():
    names = ["春の新作", "夏の新作", "Весна 2027", "Зима 2027", "北京 Launch", "Launch", "Café Noël"]
    ids = [parse_brief({**GOOD, "campaign": n}).campaign_id for n in names]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", i) for i in ids)
    assert ids[-1] == "cafe-noel" and ids[-2] == "launch"
