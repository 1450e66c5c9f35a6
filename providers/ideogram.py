"""Ideogram 3.0 (`POST /v1/ideogram-v3/generate`): images with legible text, style and character references. The
models, their options and prices are declared in providers/ideogram.toml.

Why httpx: Ideogram ships no Python SDK; the multipart form goes out through the base's `request` (the `Api-Key`
header, every error status mapped by the base). Nothing here retries: the POST is the paid generation.

Ideogram is the vendor for keyframes that must carry a headline. When the spec's style has one, the prompt asks
for it as text, in double quotes — Ideogram's own way of naming words to render — and spelled exactly:
`<prompt>. The image carries the headline "<headline>" as large, legible text, spelled exactly as written.`
(double quotes inside the headline become single ones, so the quoted words stay one string; a prompt that already
quotes the headline is left as it is). Magic prompt (AUTO by default) may reword the prompt around it; the
`magic_prompt=OFF` option sends the wording untouched. The brand palette goes as Ideogram's `color_palette`
(option `brand_palette`, on by default).

The request: text fields as plain multipart parts; our aspect as Ideogram's `aspect_ratio` of the same shape
("16:9" → "16x9", which Ideogram renders at 1312x736), or the `resolution` option for an exact size of that shape;
the seed (Ideogram takes 0 to 2^31-1); `style_reference` inputs as `style_reference_images` and the one
`character_reference` as `character_reference_images` — uploads, never links (Ideogram takes none), each read
through providers.inputs.local_media, so a file that is not an image is refused before any request. Ideogram
documents no prompt length cap, so none is applied.

The answer is a list of images with ephemeral links (valid for a limited time): the one image is downloaded at
once, without the key. `is_image_safe: false` (no link) is the output withheld by Ideogram's safety check
(moderation_output); the 422 `{"error": "Prompt failed the safety check."}` is the input refused
(moderation_input, where the status alone would say invalid_input); 402 is an empty account. Other errors are
problem+json `{"title", "detail"}`.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import httpx
from PIL import Image

from cutroom import stopping
from cutroom.assets import AssetSpec, Style
from cutroom.capabilities import Capability
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.http import download_output
from providers.inputs import local_upload, png_bytes
from providers.protocol import Output
from providers.sizes import asked_size, named_ratio, ratio_of, strays
from providers.vendor import VendorAdapter

NAME = "ideogram"
GENERATE = "/v1/ideogram-v3/generate"
#: Ideogram 3.0's aspect_ratio values.
ASPECT_RATIOS = ("1x3", "3x1", "1x2", "2x1", "9x16", "16x9", "10x16", "16x10", "2x3", "3x2", "3x4", "4x3", "4x5",
                 "5x4", "1x1")  # fmt: skip
MAX_SEED = 2_147_483_647
#: "maximum total size 10MB across all style references" (the same for character references).
MAX_REFERENCE_BYTES = 10 * 1024 * 1024
#: The form field each input role goes out as; Ideogram takes one character reference.
REFERENCE_FIELDS = {
    "style_reference": "style_reference_images",
    "character_reference": "character_reference_images",
}
MAX_CHARACTERS = 1
#: Upload formats Ideogram takes; anything else is sent as PNG.
UPLOAD_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}
#: How far a `resolution` option's shape may stray from the spec's before it is refused.
SHAPE_TOLERANCE = 0.08
#: Tries at fetching a made image, and the first pause between them (doubling; scaled to the simulator's clock).
DOWNLOAD_ATTEMPTS = 4
DOWNLOAD_PAUSE_S = 0.5
HEX = re.compile(r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})$")


def headlined(prompt: str, style: Style | None) -> str:
    """The prompt asking for the brand headline as text, quoted (see the module docstring)."""
    headline = " ".join((style.headline if style else "").split()).replace('"', "'")
    if not headline or f'"{headline}"' in prompt:
        return prompt
    base = prompt.rstrip()
    lead = "" if not base else base + (" " if base.endswith((".", "!", "?")) else ". ")
    return f'{lead}The image carries the headline "{headline}" as large, legible text, spelled exactly as written.'


def color_palette(style: Style | None) -> str | None:
    """The brand palette as Ideogram's color_palette (a JSON string), or None when it has no usable colour."""
    colours = [_hex6(c) for c in (style.palette if style else ()) if HEX.match(c)]
    return json.dumps({"members": [{"color_hex": c} for c in colours]}) if colours else None


def _hex6(colour: str) -> str:
    digits = colour[1:]
    return "#" + (digits if len(digits) == 6 else "".join(d * 2 for d in digits)).upper()


def aspect_ratio(spec: AssetSpec) -> str | None:
    """Ideogram's aspect_ratio for the spec: its aspect by name ("16:9" as "16x9"), else the ratio nearest its
    size."""
    return named_ratio(spec, ASPECT_RATIOS, separator="x")


def uploadable(data: bytes, mime: str) -> tuple[bytes, str]:
    """A reference image as Ideogram takes it: jpeg, png or webp as it is, anything else re-encoded as PNG."""
    if mime in UPLOAD_FORMATS:
        return data, mime
    with Image.open(io.BytesIO(data)) as image:
        return png_bytes(image), "image/png"


class IdeogramImage(VendorAdapter):
    vendor_name = NAME
    capability = Capability.image
    sync = True

    def auth_headers(self) -> dict[str, str]:
        return {"Api-Key": self.api_key}

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        characters = sum(1 for ref in spec.inputs if ref.role == "character_reference")
        if characters > MAX_CHARACTERS:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"Ideogram keeps one character: it takes {MAX_CHARACTERS} character reference, got {characters}",
                provider=NAME,
            )
        resolution = card.settings(spec).get("resolution")
        shape = asked_size(spec)
        if resolution and shape and strays(ratio_of(str(resolution)), shape[0] / shape[1], SHAPE_TOLERANCE):
            raise ProviderError(
                ErrorKind.invalid_input,
                f"resolution {resolution} is not the shape of the {shape[0]}x{shape[1]} asked for",
                provider=NAME,
            )

    def generate(self, spec: AssetSpec, card: ModelCard) -> Output:
        response = self.request("POST", GENERATE, files=self.form(spec, card))
        body = response.json()
        images = body.get("data") if isinstance(body, dict) else None
        image = images[0] if isinstance(images, list) and images else None
        if not isinstance(image, dict):
            raise ProviderError(
                ErrorKind.generation_failed, "generate answered without an image", provider=NAME
            )
        if image.get("is_image_safe") is False:
            raise ProviderError(
                ErrorKind.moderation_output,
                "Ideogram withheld the image as unsafe (is_image_safe: false)",
                provider=NAME,
            )
        url = image.get("url")
        if not isinstance(url, str) or not url:
            raise ProviderError(
                ErrorKind.generation_failed, "generate answered without a link", provider=NAME
            )
        return self.fetch_image(url)

    def fetch_image(self, url: str) -> Output:
        """The image behind the link, at once (it is ephemeral). A passing failure is tried again here: the image
        is made and paid for, and a failed submit would be repeated as a second paid generation. A gone link
        (not_found) is not tried again."""
        pause, attempt = DOWNLOAD_PAUSE_S, 1
        while True:  # at most DOWNLOAD_ATTEMPTS times
            try:
                return self._image_at(url)
            except ProviderError as exc:
                if exc.kind is not ErrorKind.generation_failed or attempt == DOWNLOAD_ATTEMPTS:
                    tried = f" (gave up after {attempt} tries)" if attempt > 1 else ""
                    raise ProviderError(
                        exc.kind,
                        f"the image was made (and billed) but not fetched{tried}: {exc.detail}",
                        provider=NAME,
                    ) from exc
            stopping.sleep(pause * self.time_scale)
            pause, attempt = pause * 2, attempt + 1

    def _image_at(self, url: str) -> Output:
        data, mime = download_output(url, NAME, self._http, timeout=self.timeout)
        if not mime.startswith("image/"):
            raise ProviderError(ErrorKind.generation_failed, f"the link served {mime[:40]}", provider=NAME)
        return self.described(data, mime, source_url=url)

    def form(self, spec: AssetSpec, card: ModelCard) -> list[tuple[str, Any]]:
        """The multipart parts of the spec's request; the references are read (and refused unless they are
        images within Ideogram's limits) before anything is sent."""
        settings = card.settings(spec)
        fields: dict[str, str] = {
            "prompt": headlined(spec.prompt, spec.style),
            "seed": str(spec.seed % (MAX_SEED + 1)),
        }
        if resolution := settings.get("resolution"):
            fields["resolution"] = str(resolution)
        elif ratio := aspect_ratio(spec):
            fields["aspect_ratio"] = ratio
        for name in ("rendering_speed", "magic_prompt", "style_type", "style_preset", "negative_prompt"):
            if name in settings:
                fields[name] = str(settings[name])
        if settings.get("brand_palette") and (palette := color_palette(spec.style)):
            fields["color_palette"] = palette
        return [(name, (None, value)) for name, value in fields.items()] + self.references(spec)

    def references(self, spec: AssetSpec) -> list[tuple[str, Any]]:
        parts: list[tuple[str, Any]] = []
        totals = dict.fromkeys(REFERENCE_FIELDS.values(), 0)
        for index, ref in enumerate(r for r in spec.inputs if r.role in REFERENCE_FIELDS):
            field = REFERENCE_FIELDS[ref.role]
            data, mime = uploadable(*local_upload(ref, NAME, "Ideogram"))
            totals[field] += len(data)
            if totals[field] > MAX_REFERENCE_BYTES:
                raise ProviderError(
                    ErrorKind.invalid_input,
                    f"Ideogram takes up to {MAX_REFERENCE_BYTES // 2**20} MB of {field} in all; these are more",
                    provider=NAME,
                )
            parts.append((field, (f"{ref.role}-{index}.{UPLOAD_FORMATS[mime]}", data, mime)))
        return parts

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """problem+json as `title: detail`; the safety refusal's `{"error": …}` as it is."""
        if isinstance(body, dict) and body.get("detail") and body.get("title"):
            return f"{body['title']}: {body['detail']}"
        return super().error_detail(body, response)

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        if status == 422 and "safety" in detail.lower():
            return ErrorKind.moderation_input
        if status == 402:
            return ErrorKind.insufficient_credits
        return None
