"""The local refiner, and the offline render -> score -> refine loop it closes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cutroom.assets import AssetKind, AssetSpec, Score, Style
from cutroom.brief import Brand
from providers.local.image import LocalImage
from providers.local.judge import LocalJudge
from providers.local.refiner import LocalRefiner
from providers.local.vocabulary import DIRECTIVES, directives_in

TARGET = 85.0


def score(**criteria: float) -> Score:
    return Score(total=sum(criteria.values()) / len(criteria), criteria=criteria)


def test_appends_the_directives_of_the_two_weakest_criteria_below_target() -> None:
    weak = score(size=100, exposure=70, contrast=60, sharpness=40, palette=90, content=80)

    refined = LocalRefiner().refine("A rocket at dawn", weak, TARGET)

    assert refined == f"A rocket at dawn, {DIRECTIVES['sharpness']}, {DIRECTIVES['contrast']}"


def test_only_criteria_below_target_are_answered() -> None:
    one_weak = score(size=100, exposure=95, contrast=84.9, sharpness=90, palette=99, content=88)

    assert LocalRefiner().refine("A rocket", one_weak, TARGET) == f"A rocket, {DIRECTIVES['contrast']}"


def test_a_prompt_that_passes_is_left_alone() -> None:
    passing = score(size=100, exposure=90, contrast=86, sharpness=85, palette=99, content=88)

    assert LocalRefiner().refine("A rocket at dawn", passing, TARGET) == "A rocket at dawn"


def test_never_repeats_a_directive_the_prompt_already_carries() -> None:
    weak = score(size=100, exposure=30, contrast=40, sharpness=50, palette=90, content=95)
    prompt = f"A rocket, {DIRECTIVES['exposure']}"

    refined = LocalRefiner().refine(prompt, weak, TARGET)

    assert refined == f"{prompt}, {DIRECTIVES['contrast']}, {DIRECTIVES['sharpness']}"
    assert all(refined.count(phrase) <= 1 for phrase in DIRECTIVES.values())


def test_repeated_rounds_grow_the_prompt_until_every_weak_criterion_is_addressed() -> None:
    weak = score(size=100, exposure=30, contrast=40, sharpness=50, palette=60, content=70)
    refiner, prompt, rounds = LocalRefiner(), "A rocket at dawn", []

    for _ in range(4):
        prompt = refiner.refine(prompt, weak, TARGET)
        rounds.append(prompt)

    assert rounds[0].startswith("A rocket at dawn, ")
    assert [len(directives_in(p)) for p in rounds] == [2, 4, 5, 5]
    assert rounds[3] == rounds[2]
    assert rounds[2].split(", ")[0] == "A rocket at dawn"


def test_criteria_it_has_no_directive_for_are_ignored() -> None:
    vendor = score(aesthetics=10, exposure=60)

    assert LocalRefiner().refine("A rocket", vendor, TARGET) == f"A rocket, {DIRECTIVES['exposure']}"


def test_a_trailing_comma_does_not_double_up() -> None:
    weak = score(exposure=60)

    assert LocalRefiner().refine("A rocket, ", weak, TARGET) == f"A rocket, {DIRECTIVES['exposure']}"


@pytest.mark.parametrize(
    ("prompt", "size"),
    [
        ("A rocket lifting off at dawn over the coast", (1080, 1920)),
        ("Mountain hikers at sunrise", (1080, 1080)),
        ("A calm yoga session by the river", (1280, 720)),
    ],
)
def test_the_local_loop_reaches_the_quality_target(
    prompt: str, size: tuple[int, int], tmp_path: Path
) -> None:
    brand = Brand(name="Aurora", palette=["#0B3D91", "#FC3D21", "#F4F4F4"])
    style = Style(brand=brand.name, palette=tuple(brand.palette), headline="Launch day")
    generator, judge, refiner = LocalImage(), LocalJudge(), LocalRefiner()
    totals: list[float] = []

    for _ in range(5):
        spec = AssetSpec(
            kind=AssetKind.image,
            provider="local",
            model=generator.model,
            prompt=prompt,
            width=size[0],
            height=size[1],
            style=style,
        )
        path = tmp_path / f"round-{len(totals) + 1}.png"
        path.write_bytes(generator.render(spec).data)
        result = judge.score(path, spec, brand)
        totals.append(result.total)
        if result.total >= TARGET:
            break
        prompt = refiner.refine(prompt, result, TARGET)

    assert totals[0] < TARGET  # a plain prompt leaves room to refine
    assert max(totals) >= TARGET
    assert max(totals) >= totals[0]
