"""What an adapter hands its vendor from a spec's inputs: a local file only when its bytes are media of the kind
the role expects (sniffed, never guessed from its name), a link as it is, a data URI within the vendor's cap.

A stray path (`--style-ref /etc/passwd`) is refused here, before any request, whatever the adapter does next. A
vendor that takes uploads only gets a link's bytes through `upload_media`, fetched by cutroom.remote (public
addresses only, capped, sniffed), never by a GET of its own.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from pathlib import Path

from PIL import Image

from cutroom.assets import AssetSpec, InputRef
from cutroom.remote import Remote, RemoteInputError
from cutroom.sniff import sniff_file
from cutroom.storage import path_of
from providers.errors import ErrorKind, ProviderError

#: The largest local input any adapter reads into memory.
MAX_INPUT_BYTES = 50 * 1024 * 1024
#: What an input of each role must be.
EXPECTED = {"source": ("image", "video"), "audio": ("audio",), "clip": ("video",), "voice": ("audio",)}


def link(ref: InputRef) -> str | None:
    """A public http(s) link to the input, when it has one."""
    for candidate in (ref.url, ref.uri):
        if candidate and candidate.startswith(("http://", "https://")):
            return candidate
    return None


def public_link(ref: InputRef, provider: str, vendor: str) -> str:
    """The link a vendor that only fetches its inputs is given, or one sentence on what to configure."""
    if url := link(ref):
        return url
    raise ProviderError(
        ErrorKind.invalid_input,
        f"{vendor} fetches the {ref.role} input from a link, and a local file has none: store the campaign on "
        "S3 (CUTROOM_STORAGE=s3://bucket/prefix), which hands vendors short-lived presigned links, or give an "
        "http(s) URL",
        provider=provider,
    )


def local_media(
    ref: InputRef, provider: str, expect: tuple[str, ...] = ("image",), limit: int = MAX_INPUT_BYTES
) -> tuple[bytes, str]:
    """A local input's bytes and MIME type, refused unless it is a readable file of the expected media."""
    path, mime = checked_file(ref, provider, expect, limit)
    return path.read_bytes(), mime


def check_local_inputs(spec: AssetSpec, provider: str) -> None:
    """Every local file a spec names is media of the kind its role expects: checked from a few bytes before
    anything is paid for (a stray path like /etc/passwd never reaches a request)."""
    for ref in spec.inputs:
        if ref.uri.startswith("file:"):
            checked_file(ref, provider, EXPECTED.get(ref.role, ("image",)))


def checked_file(
    ref: InputRef, provider: str, expect: tuple[str, ...] = ("image",), limit: int = MAX_INPUT_BYTES
) -> tuple[Path, str]:
    """A local input's path and sniffed MIME type, refused unless it is a readable file of the expected media
    within the size limit."""
    try:
        path = path_of(ref.uri)
        size = path.stat().st_size
        mime = sniff_file(path)
    except (ValueError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a local file"
        raise ProviderError(ErrorKind.invalid_input, f"the {ref.role} input cannot be read: {reason}",
                            provider=provider) from None  # fmt: skip
    if mime is None or mime.split("/")[0] not in expect:
        found = "something else" if mime is None else mime
        raise ProviderError(
            ErrorKind.invalid_input,
            f"the {ref.role} input {path.name!r} is not {' or '.join(expect)} media (its bytes are {found})",
            provider=provider,
        )
    if size > limit:
        raise ProviderError(
            ErrorKind.invalid_input,
            f"the {ref.role} input {path.name!r} is {size / 1e6:.1f} MB; {provider} takes up to {limit / 1e6:.1f} MB",
            provider=provider,
        )
    return path, mime


def local_upload(ref: InputRef, provider: str, vendor: str) -> tuple[bytes, str]:
    """A local image for a vendor that takes images as uploads only and fetches no link: a link is refused."""
    if not ref.uri.startswith("file:"):
        raise ProviderError(
            ErrorKind.invalid_input,
            f"{vendor} takes the {ref.role} image as an upload, not a link: give a local file ({ref.uri[:80]})",
            provider=provider,
        )
    return local_media(ref, provider, ("image",))


def remote_media(
    ref: InputRef,
    provider: str,
    expect: tuple[str, ...] = ("image",),
    limit: int = MAX_INPUT_BYTES,
    remote: Remote | None = None,
) -> tuple[bytes, str]:
    """A link input's bytes and MIME type, fetched through cutroom.remote within the smaller of the vendor's
    `limit` and the fetch cap, and refused unless they are media of the expected kind."""
    url = link(ref)
    if url is None:
        raise ProviderError(ErrorKind.invalid_input, f"the {ref.role} input is not a link", provider=provider)
    policy = remote or Remote.from_settings()
    policy = dataclasses.replace(policy, max_bytes=min(policy.max_bytes, limit))
    try:
        fetched = policy.fetch(url, expect)
    except RemoteInputError as exc:
        raise remote_error(exc, provider, ref.role) from None
    return fetched.data, fetched.mime


def upload_media(
    ref: InputRef,
    provider: str,
    expect: tuple[str, ...] = ("image",),
    limit: int = MAX_INPUT_BYTES,
    remote: Remote | None = None,
) -> tuple[bytes, str]:
    """An input's bytes for a vendor that takes uploads only: the local file when there is one (no fetch),
    else the link's bytes."""
    if ref.uri.startswith("file:") or link(ref) is None:
        return local_media(ref, provider, expect, limit)
    return remote_media(ref, provider, expect, limit, remote)


def check_link(ref: InputRef, provider: str, remote: Remote | None = None) -> None:
    """Refuse a link input before anything is paid for when its scheme or address is not allowed (a look-up, no
    connection). A name that does not resolve now is left to the fetch: it may by then."""
    url = link(ref)
    if url is None:
        return
    try:
        (remote or Remote.from_settings()).check(url)
    except RemoteInputError as exc:
        if not exc.transient:
            raise remote_error(exc, provider, ref.role) from None


def remote_error(exc: RemoteInputError, provider: str, role: str = "") -> ProviderError:
    """A fetch that failed as the taxonomy has it: a refusal is invalid_input, a passing fault is retried."""
    kind = ErrorKind.generation_failed if exc.transient else ErrorKind.invalid_input
    prefix = f"the {role} input: " if role else ""
    return ProviderError(kind, f"{prefix}{exc}", provider=provider)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def data_uri_size(byte_count: int, mime: str) -> int:
    """The length of the data URI `data_uri` makes of so many bytes."""
    return len(f"data:{mime};base64,") + 4 * -(-byte_count // 3)


def png_bytes(picture: Image.Image) -> bytes:
    """An image as PNG, for a vendor that does not take its format; a mode PNG cannot keep becomes RGBA."""
    if picture.mode not in ("RGB", "RGBA", "L", "LA"):
        picture = picture.convert("RGBA")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
