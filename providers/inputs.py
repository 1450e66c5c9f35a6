"""What an adapter hands its vendor from a spec's inputs: a local file only when its bytes are media of the kind
the role expects (sniffed, never guessed from its name), a link as it is, a data URI within the vendor's cap.

A stray path (`--style-ref /etc/passwd`) is refused here, before any request, whatever the adapter does next.
"""

from __future__ import annotations

import base64

from cutroom.assets import InputRef
from cutroom.sniff import sniff_file
from cutroom.storage import path_of
from providers.errors import ErrorKind, ProviderError

#: The largest local input any adapter reads into memory.
MAX_INPUT_BYTES = 50 * 1024 * 1024
#: What an input of each role must be.
EXPECTED = {"source": ("image", "video")}


def link(ref: InputRef) -> str | None:
    """A public http(s) link to the input, when it has one."""
    for candidate in (ref.url, ref.uri):
        if candidate and candidate.startswith(("http://", "https://")):
            return candidate
    return None


def local_media(
    ref: InputRef, provider: str, expect: tuple[str, ...] = ("image",), limit: int = MAX_INPUT_BYTES
) -> tuple[bytes, str]:
    """A local input's bytes and MIME type, refused unless it is a readable file of the expected media."""
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
    return path.read_bytes(), mime


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def data_uri_size(byte_count: int, mime: str) -> int:
    """The length of the data URI `data_uri` makes of so many bytes."""
    return len(f"data:{mime};base64,") + 4 * -(-byte_count // 3)
