"""The one input boundary: what every way in (a brief file, a script, a CLI flag, a deployment parameter) goes
through before Cutroom acts on it.

Its limits, said once:
- a brief or script file: at most MAX_DOCUMENT_BYTES, strict UTF-8;
- an image file a document names (a logo, a portrait): beside the document or under an allowed root, at most
  MAX_IMAGE_BYTES, and a PNG, JPEG or WebP by its bytes;
- YAML: at most MAX_ALIASES aliases (a 1 KB "alias bomb" expands to gigabytes when printed), no duplicate keys
  (the last would silently win); JSON: no duplicate keys, no NaN or Infinity;
- text fields: trimmed, no control characters (tab and newline aside) or bidirectional overrides, each with its
  own length cap (on the models that use `Text`);
- numbers: finite;
- every message quotes at most QUOTED characters of a bad value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from cutroom.sniff import sniff_file

MAX_DOCUMENT_BYTES = 64 * 1024
MAX_IMAGE_BYTES = 20 * 1024 * 1024
#: Image formats a document's image may be in (what the renderers, the assembly and the vendors read).
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
MAX_ALIASES = 50
QUOTED = 80

#: Characters no text field may hold: control characters (tab, newline and carriage return aside) and the
#: bidirectional overrides that make a report show other text than it holds.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


class BoundaryError(ValueError):
    """Input refused at the boundary; the message names what is wrong and quotes little."""


def quote(value: object, limit: int = QUOTED) -> str:
    """A value as a message may show it: its repr, cut to `limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", "\\n")
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"'{shown}'" if isinstance(value, str) else shown


def read_document(path: Path, what: str = "file", limit: int = MAX_DOCUMENT_BYTES) -> str:
    """A text document's contents, refused when it is not a file, too big, or not UTF-8."""
    if path.is_dir():
        raise BoundaryError(f"{path.name} is a folder, not a {what}")
    if not path.is_file():
        raise BoundaryError(f"no {what} at {quote(str(path))}")
    size = path.stat().st_size
    if size > limit:
        raise BoundaryError(f"{path.name} is {size / 1024:.0f} KB; a {what} is at most {limit // 1024} KB")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = f"{path.name} is not UTF-8 text (byte {exc.start + 1}, line {line}); save it as UTF-8"
        raise BoundaryError(message) from None


def image_file(
    given: str, what: str, document: str, folder: Path, roots: list[Path], limit: int = MAX_IMAGE_BYTES
) -> Path:
    """The image a document names, resolved (symlinks too) from the document's folder: refused unless it lies
    under one of `roots`, exists, is at most `limit` bytes and is an image by its bytes. `what` names it in the
    message ("'brand.logo'", "the portrait"), `document` is what names it (brief, script). A file outside the
    roots is refused before a byte of it is read."""

    def unreadable(exc: Exception) -> BoundaryError:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a usable file name"
        return BoundaryError(f"{what} points to {quote(given)}, which cannot be read ({reason.lower()})")

    try:
        path = (Path(given) if Path(given).is_absolute() else folder / given).resolve()
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte …
        raise unreadable(exc) from None
    if not any(path.is_relative_to(root) for root in roots):
        raise BoundaryError(
            f"{what} points to {quote(given)}, outside the {document}'s folder; put the file beside the "
            f"{document} (or list its folder in CUTROOM_ALLOWED_ROOTS)"
        )
    try:
        found = path.is_file()
        size, kind = (path.stat().st_size, sniff_file(path)) if found else (0, None)
    except OSError as exc:
        raise unreadable(exc) from None
    if not found:
        raise BoundaryError(f"{what} points to {quote(given)}, which does not exist")
    if size > limit:
        raise BoundaryError(
            f"{what} points to {quote(given)}, which is {size / 2**20:.1f} MB; at most {limit // 2**20} MB"
        )
    if kind not in IMAGE_TYPES:
        raise BoundaryError(f"{what} points to {quote(given)}, which is not a PNG, JPEG or WebP image")
    return path


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts aliases and refuses duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise BoundaryError(
                    f"more than {MAX_ALIASES} YAML aliases (near line {mark.line + 1}): refused"
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, str | int | float | bool) and key in seen:
                raise BoundaryError(f"{quote(key)} is given twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """YAML data with aliases bounded and duplicate keys refused; a syntax error says near which line."""
    loader = None
    try:
        loader = _Loader(text)  # its reader already refuses characters YAML does not allow
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" near line {mark.line + 1}" if mark is not None else ""
        raise BoundaryError(f"the file is not valid YAML{where}") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_json(text: str) -> Any:
    """JSON data with duplicate keys and NaN/Infinity refused."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                raise BoundaryError(f"{quote(key)} is given twice")
            seen[key] = value
        return seen

    def constant(name: str) -> float:
        raise BoundaryError(f"{name} is not a number a brief can hold")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise BoundaryError(f"the file is not valid JSON near line {exc.lineno}") from None


def load_document(path: Path, what: str) -> Any:
    """A YAML or JSON document (by its suffix) read through every rule above."""
    text = read_document(path, what)
    return load_json(text) if path.suffix.lower() == ".json" else load_yaml(text)


def _clean(value: str) -> str:
    if found := _FORBIDDEN.search(value):
        raise ValueError(f"holds a control character (U+{ord(found.group()):04X}); remove it")
    return value


def _text_only(value: Any) -> Any:
    if isinstance(value, bool | int | float):  # a number where words belong is a slip, not text
        raise ValueError(f"must be text, not the number {quote(value)}")
    return value


def text(max_length: int, min_length: int = 0) -> Any:
    """A text field: trimmed, clean, within its length."""
    # The constraints come first: a BeforeValidator placed ahead of them would detach them from the str schema.
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        BeforeValidator(_text_only),
        AfterValidator(_clean),
    ]


#: A number that is finite (1e309, .inf and NaN are refused) and within `le` when one is given.
def finite(**bounds: float) -> Any:
    return Annotated[float, Field(allow_inf_nan=False, **bounds)]
