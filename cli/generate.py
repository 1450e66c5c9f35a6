"""`cutroom generate`: one image, clip or voice-over, or one operation on an earlier one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

from cli import inputs, stopping
from cli.errors import UserError, friendly
from cli.prefect_setup import configured_prefect
from cli.terminal import console
from cutroom.assets import AssetKind, Operation
from cutroom.channels import Aspect
from cutroom.plan import CameraMotion


@friendly
def generate(
    kind: Annotated[AssetKind, typer.Argument(help="What to make.")],
    prompt: Annotated[str, typer.Option(help="What it should show (or, for speech, the words to say).")],
    provider: Annotated[str, typer.Option(help="Provider name; see `cutroom providers`.")] = "local",
    model: Annotated[
        str | None, typer.Option(help="The provider's model, e.g. ray-flash-2 or gen4.5.")
    ] = None,
    aspect: Annotated[Aspect, typer.Option(help="Frame shape.")] = Aspect.landscape,
    duration: Annotated[float, typer.Option(min=1, max=30, help="Clip length in seconds.")] = 5.0,
    camera: Annotated[CameraMotion, typer.Option(help="Camera motion for a clip.")] = CameraMotion.push_in,
    image: Annotated[
        str | None,
        typer.Option(help="Start a clip from: a file, an http(s) URL, or provider:job_id to extend."),
    ] = None,
    end_image: Annotated[
        str | None, typer.Option(help="End a clip on: a file, URL, or provider:job_id to lead into.")
    ] = None,
    loop: Annotated[bool, typer.Option(help="A clip whose end flows back into its start.")] = False,
    operation: Annotated[
        Operation | None, typer.Option(help="Work on --source instead of making anew.")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="What --operation works on: provider:job_id, URL or file.")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="One of the model's own settings as NAME=VALUE (repeatable), e.g. -o mode=flex_2, "
            "-o style_preset=photographic; `cutroom models --provider P --options` lists them.",
        ),
    ] = None,
    fps: Annotated[
        int | None,
        typer.Option(
            min=1, help="Frame rate of a new clip, or the target of --operation enhance_frame_rate."
        ),
    ] = None,
    reference: Annotated[
        list[str] | None,
        typer.Option(help="An image for a new image to draw on: file, URL or provider:job_id (repeatable)."),
    ] = None,
    style_ref: Annotated[
        list[str] | None, typer.Option(help="An image whose style a new image follows (repeatable).")
    ] = None,
    character_ref: Annotated[
        list[str] | None,
        typer.Option(help="An image of the character a new image shows, one identity (repeatable)."),
    ] = None,
    voice: Annotated[str | None, typer.Option(help="Voice for speech, e.g. en-us, en-gb.")] = None,
    headline: Annotated[str, typer.Option(help="Text typeset on an image or revealed in a clip.")] = "",
    out: Annotated[Path, typer.Option(help="File or folder to write the asset to.")] = Path("."),
    verbose: Annotated[bool, typer.Option(help="Show Prefect's own logs too.")] = False,
) -> None:
    """Make one image, clip or voice-over."""
    from pydantic import ValidationError

    from cutroom.capabilities import Capability
    from cutroom.requests import AssetRequest
    from cutroom.settings import settings
    from providers.errors import ProviderError
    from providers.registry import known, retirement
    from tasks.requests import check

    if retired := retirement(Capability(kind.value), provider, model):
        raise UserError(retired, "run `cutroom models` to see the models there are")
    if provider not in known(Capability(kind.value)):
        raise UserError(
            f"'{provider}' cannot make {kind.value}; known: {', '.join(known(Capability(kind.value)))}",
            "run `cutroom providers` to see what each provider does",
        )
    if not prompt.strip():
        raise UserError("--prompt is empty", "say what the asset should show or say")
    references = {"--reference": reference, "--style-ref": style_ref, "--character-ref": character_ref}
    given = [(flag, value) for flag, values in references.items() for value in values or ()]
    for flag, value in (("--image", image), ("--end-image", end_image), ("--source", source), *given):
        if value is not None and not _reachable(value, flag):
            raise UserError(
                f"{flag} {value} does not exist", "give a file path, an http(s) URL or provider:job_id"
            )
    if given and (kind is not AssetKind.image or operation is not None):
        what = f"--operation {operation.value}" if operation else f"`generate {kind.value}`"
        raise UserError(
            f"{given[0][0]} guides a new image; it does not go with {what}",
            "use --reference, --style-ref and --character-ref with `cutroom generate image`",
        )
    if (operation is None) != (source is None):
        raise UserError(
            "--operation and --source go together", "e.g. --operation upscale --source luma:JOB_ID"
        )
    try:
        request = AssetRequest(
            kind=kind, prompt=prompt, provider=provider, model=model, aspect=aspect, duration_s=duration,
            camera_motion=camera, image=image, end_image=end_image, loop=loop, operation=operation,
            source=source, options=_options(option or []), fps=fps, references=tuple(reference or ()),
            style_references=tuple(style_ref or ()), character_references=tuple(character_ref or ()),
            voice=voice, headline=headline,
        )  # fmt: skip
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise UserError(
            f"{'.'.join(map(str, problem['loc'])) or 'request'}: {problem['msg']}",
            "see `cutroom generate --help`",
        ) from None
    # The asset is made and kept where campaigns are (CUTROOM_STORAGE), then copied to --out.
    location = inputs.location(settings().out)
    try:
        # Before Prefect starts: a request its model cannot make costs nothing.
        check(request, links=location.startswith("s3://"))
    except ProviderError as exc:
        if exc.kind.value != "invalid_input":
            raise
        hint = (
            "Cutroom fetches public http(s) links only (README, Security)"
            if "cannot fetch" in exc.detail
            else f"see `cutroom models --provider {provider} --options`"
        )
        raise UserError(exc.detail, hint) from None
    with configured_prefect(location, verbose):
        from flows.generate import generate_one

        asset = stopping.run_flow(lambda: generate_one(request, out=location))
    from cutroom.storage import open_storage

    storage = open_storage(location)
    made = storage.local_path(storage.key_of(asset.uri))
    target = out / f"{kind.value}-{asset.sha256[:12]}{made.suffix}" if out.is_dir() or not out.suffix else out
    target.parent.mkdir(parents=True, exist_ok=True)
    _copy_whole(made, target)
    size = f"{asset.width}x{asset.height} " if asset.width else ""
    length = f"{asset.duration_s:.1f} s " if asset.duration_s else ""
    job = f", job {asset.provider}:{asset.job_id}" if asset.job_id else ""
    console.print(
        f"{kind.value}: {target} ({size}{length}{asset.provider}/{asset.model}{job})", highlight=False
    )


def _copy_whole(source: Path, target: Path) -> None:
    """Copy beside the target, then rename over it: an interrupted copy leaves no half a file at --out."""
    part = target.with_name(f".part-{target.name}")
    try:
        shutil.copyfile(source, part)
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)


def _options(pairs: list[str]) -> dict[str, object]:
    """NAME=VALUE pairs as the model's settings: numbers and true/false as such, anything else as text."""
    options: dict[str, object] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise UserError(f"--option {pair[:60]!r} is not NAME=VALUE", "e.g. -o mode=flex_2")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        options[name.strip()] = parsed if isinstance(parsed, str | int | float | bool) else value
    return options


def _reachable(value: str, flag: str) -> bool:
    """A URL or provider:job_id is taken on trust (the provider says if it is wrong); a path must exist."""
    from providers.errors import ProviderError
    from providers.registry import is_job

    try:
        return value.startswith(("http://", "https://")) or is_job(value) or Path(value).is_file()
    except ProviderError as exc:
        raise UserError(
            f"{flag}: {exc.detail}", "give provider:job_id as `cutroom generate` printed it"
        ) from None
