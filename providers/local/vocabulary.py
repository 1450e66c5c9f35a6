"""The words the local judge scores by, and the prompt directives the refiner adds for each.

The judge names criteria with these keys; the refiner appends the matching directive to a prompt
when a criterion is weak; the local renderers honour the directives they find in a prompt.
"""

DIRECTIVES: dict[str, str] = {
    "size": "exact frame size",
    "exposure": "evenly lit, bright exposure",
    "contrast": "bold high contrast",
    "sharpness": "crisp fine detail",
    "palette": "strictly in brand colours",
    "content": "rich layered composition",
    "motion": "continuous camera motion",
    "duration": "exact running time",
    "loudness": "clear steady voice level",
    "silence": "no dead air",
}


def directives_in(prompt: str) -> set[str]:
    """The criteria whose directive a prompt already carries."""
    lowered = prompt.lower()
    return {name for name, phrase in DIRECTIVES.items() if phrase in lowered}
