"""Stability AI's Stable Image API (v2beta): Stable Image Ultra and Core, and Stable Diffusion 3.5 (large, large
turbo, medium, flash). The models, their options and prices are declared in providers/stability.toml.

Why httpx: Stability ships no Python SDK for v2beta (`stability-sdk` is the retired gRPC v1 API), so the form goes
out through the base's `request` (the Bearer key, every error status mapped by the base). Nothing here retries: the
POST is the paid generation itself, answered with the image.

The request is multipart/form-data always (Stability refuses a JSON body); every text field goes as a plain part,
so no dummy file is needed to make it multipart. Ultra and Core each have their endpoint; the SD 3.5 models share
`/generate/sd3` and name themselves in `model`. Our aspect is Stability's `aspect_ratio` of the same name (it also
has 21:9, 3:2, 5:4 …); Stability picks the pixel size (Ultra and SD 3.5 ~1 MP, Core ~1.5 MP, in buckets such as
1344x768), so the size is read from the image. A `reference` input is the init image of image-to-image (Ultra, or
SD 3.5 with mode=image-to-image) with the `strength` option; the result keeps the init image's shape
(aspect_ratio is text-to-image only), so an init image of another shape is centre-cropped to the asked one first.
The seed is spec.seed (0: Stability picks one). The prompt is cut at Stability's 10,000 characters. The brand's
headline is not sent: Stability does not promise legible text — headline keyframes go to Ideogram.

`accept: image/*`, not application/json: the image comes as its own bytes (JSON would carry it as base64, a third
larger, decoded here again), and the `finish-reason` header still says whether it is the real image. An answer
that is not an image (a truncated JSON body) is unreadable: transient.

Answers: 200 with finish-reason CONTENT_FILTERED is an output the moderation blurred — refused, not stored
(moderation_output; Stability bills it, (u)). 403 `content_moderation` is the input refused (moderation_input, not
a bad key); 402 `payment_required` is an empty account; 429 carries no Retry-After (Stability documents a 60 s
lockout, which the caller's back-off does not know). Error bodies `{"id", "name", "errors": [...]}` become the
message, with Stability's request id for support.
"""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image

from cutroom.assets import AssetSpec
from cutroom.capabilities import Capability
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.inputs import local_upload, png_bytes
from providers.protocol import Output
from providers.sizes import asked_size, named_ratio, strays
from providers.vendor import VendorAdapter

NAME = "stability"
GENERATE = "/v2beta/stable-image/generate"
BALANCE = "/v1/user/balance"
#: Stability's aspect_ratio values (text-to-image).
ASPECT_RATIOS = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")
MAX_PROMPT = 10_000
MAX_SEED = 4_294_967_294
CREDIT_USD = 0.01
#: What image-to-image runs at when the spec names no strength: Stability requires one and documents no default.
DEFAULT_STRENGTH = 0.5
#: Init-image formats Stability takes; anything else is sent as PNG.
INIT_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}
#: How far an init image's shape may stray from the asked one before it is cropped (the output keeps its shape).
SHAPE_TOLERANCE = 0.01


def endpoint(model: str) -> tuple[str, dict[str, str]]:
    """The generate path of a model, and the form fields that name the model there."""
    if model.startswith("sd3.5"):
        return f"{GENERATE}/sd3", {"model": model}
    return f"{GENERATE}/{model}", {}


def aspect_ratio(spec: AssetSpec) -> str | None:
    """Stability's aspect_ratio for the spec: its aspect by name, else the ratio nearest its size."""
    return named_ratio(spec, ASPECT_RATIOS)


def init_image(data: bytes, mime: str, shape: tuple[int, int] | None) -> tuple[bytes, str]:
    """The init image as Stability takes it: jpeg, png or webp, centre-cropped to the asked shape when it strays
    more than SHAPE_TOLERANCE from it (image-to-image answers in its input's shape)."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        box = None
        if shape is not None and strays(width / height, shape[0] / shape[1], SHAPE_TOLERANCE):
            if width / height > shape[0] / shape[1]:  # too wide: trim the sides
                keep = round(height * shape[0] / shape[1])
                box = ((width - keep) // 2, 0, (width - keep) // 2 + keep, height)
            else:  # too tall: trim top and bottom
                keep = round(width * shape[1] / shape[0])
                box = (0, (height - keep) // 2, width, (height - keep) // 2 + keep)
        if box is None and mime in INIT_FORMATS:
            return data, mime
        return png_bytes(image.crop(box) if box else image), "image/png"


class StabilityImage(VendorAdapter):
    vendor_name = NAME
    capability = Capability.image
    sync = True

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        references = [ref for ref in spec.inputs if ref.role == "reference"]
        if len(references) > 1:
            raise ProviderError(
                ErrorKind.invalid_input,
                f"Stability starts from one reference image; got {len(references)}",
                provider=NAME,
            )
        if "strength" in spec.options and not references:
            raise ProviderError(
                ErrorKind.invalid_input,
                "strength is for image-to-image: it needs a reference input to start from",
                provider=NAME,
            )

    def generate(self, spec: AssetSpec, card: ModelCard) -> Output:
        path, parts = self.form(spec, card)
        response = self.request("POST", path, files=parts, headers={"accept": "image/*"})
        return self.answered_image(response)

    def form(self, spec: AssetSpec, card: ModelCard) -> tuple[str, list[tuple[str, Any]]]:
        """The endpoint and the multipart parts of the spec's request; the init image is read (and refused
        unless it is an image) before anything is sent."""
        settings = card.settings(spec)
        path, fields = endpoint(card.model)
        reference = next((ref for ref in spec.inputs if ref.role == "reference"), None)
        fields |= {"prompt": spec.prompt[:MAX_PROMPT], "seed": str(spec.seed % (MAX_SEED + 1))}
        for name in ("output_format", "style_preset", "negative_prompt", "cfg_scale"):
            if name in settings:
                fields[name] = str(settings[name])
        files: list[tuple[str, Any]] = []
        if reference is not None:
            data, mime = init_image(*local_upload(reference, NAME, "Stability"), asked_size(spec))
            fields["strength"] = str(settings.get("strength", DEFAULT_STRENGTH))
            if "model" in fields:
                fields["mode"] = "image-to-image"
            files.append(("image", (f"reference.{INIT_FORMATS[mime]}", data, mime)))
        elif ratio := aspect_ratio(spec):
            fields["aspect_ratio"] = ratio
        return path, [(name, (None, value)) for name, value in fields.items()] + files

    def answered_image(self, response: httpx.Response) -> Output:
        """The image of a 200: an answer that is no image is unreadable (transient), a filtered one refused."""
        mime = response.headers.get("content-type", "").split(";")[0].strip()
        if not mime.startswith("image/"):
            raise ProviderError(
                ErrorKind.generation_failed,
                f"generate: unreadable answer ({mime or 'no content type'}, not an image)",
                provider=NAME,
            )
        finish = response.headers.get("finish-reason", "SUCCESS")
        if finish == "CONTENT_FILTERED":
            raise ProviderError(
                ErrorKind.moderation_output,
                "Stability's moderation blurred the output (finish-reason CONTENT_FILTERED); it is not kept",
                provider=NAME,
            )
        if finish != "SUCCESS":
            raise ProviderError(
                ErrorKind.generation_failed, f"generate ended with finish-reason {finish[:40]}", provider=NAME
            )
        return self.described(response.content, mime)

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """Stability's `{"id", "name", "errors": [...]}` (v1: `message`) as one line, with the request id."""
        if not isinstance(body, dict) or not ("errors" in body or "message" in body):
            return super().error_detail(body, response)
        errors = body.get("errors") or [body.get("message")]
        text = "; ".join(str(e) for e in (errors if isinstance(errors, list) else [errors]) if e)
        request = f" (request {body['id']})" if body.get("id") else ""
        return f"{body.get('name') or 'error'}: {text}{request}"

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        name = body.get("name") if isinstance(body, dict) else None
        if status == 403 and name == "content_moderation":  # the prompt or image was refused, not the key
            return ErrorKind.moderation_input
        if status == 402 or name == "payment_required":
            return ErrorKind.insufficient_credits
        return None

    def balance(self) -> float:
        """The account's balance in USD (Stability reports credits, $0.01 each)."""
        with self.calling("balance"):
            body = self.request("GET", BALANCE).json()
        credits = body.get("credits") if isinstance(body, dict) else None
        if not isinstance(credits, int | float):
            raise ProviderError(
                ErrorKind.generation_failed, "balance: no credits in the answer", provider=NAME
            )
        return round(credits * CREDIT_USD, 4)
