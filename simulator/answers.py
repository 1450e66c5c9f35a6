"""What a simulated language model answers: text and JSON built from the request, shared by the LLM vendors.

A schema answer is valid by construction: objects, arrays, strings, numbers, integers, booleans, null, enum,
const, anyOf/oneOf/allOf, type lists and `$ref` into `$defs`/`definitions` (as pydantic and the vendors' SDKs
emit them), with their bounds (minimum/maximum and the exclusive ones, multipleOf, minLength/maxLength,
minItems/maxItems, uniqueItems, string formats). Not honoured (u): `pattern`, `not`, `if/then/else`,
`patternProperties`, recursion that requires itself (a required non-empty self-reference).

The same request gets the same answer: the random source is seeded from a hash of the request body. Strings
are made of the words of the request's messages, so a plan's copy names the brief's products, places and
moods; words the prompt says to avoid ("avoid: cheap, loud", `"avoid": ["cheap"]`) are left out, as a model
that follows instructions would. The simulator's `llm_inject` word, when set, goes into every free-text string
(not into enums, consts, formats or keys), to test that a client repairs words a brand forbids.

Usage is counted as the vendors roughly do: a token per four characters, a fixed count per image.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from simulator.core import Fault

#: A language model's own ways to fail, drawn per request.
LLM_FAULTS = (Fault.invalid_json, Fault.schema_violation, Fault.refusal, Fault.truncated)
#: Input tokens one image costs (GPT-4o's 512-px tiles at high detail, the figure most guides quote).
IMAGE_TOKENS = 765
#: Below this depth a schema is answered at its smallest (no optional fields, minItems, null when allowed),
#: so recursive models end.
MAX_DEPTH = 6
#: How often an optional field is left out, and a nullable one answered with null.
SKIP_OPTIONAL, CHOOSE_NULL = 0.3, 0.15
FALLBACK_WORDS = ("campaign", "story", "light", "morning", "bold", "product", "colour", "moment", "city")
STOPWORDS = frozenset({
    "the", "and", "for", "with", "that", "this", "from", "into", "your", "you", "are", "was", "were", "will",
    "would", "should", "could", "have", "has", "had", "not", "but", "all", "any", "can", "our", "their", "they",
    "them", "its", "his", "her", "she", "him", "who", "what", "when", "where", "which", "while", "about", "over",
    "under", "than", "then", "there", "these", "those", "each", "must", "may", "also", "only", "very", "more",
    "most", "such", "use", "using", "json", "true", "false", "null", "none", "avoid", "avoids", "never",
    "banned", "forbidden", "forbid", "exclude",
})  # fmt: skip
CONNECTORS = ("with", "and", "for", "in", "of", "on", "the", "at")
#: Fields answered with a short label rather than a sentence.
SHORT_FIELDS = ("name", "title", "headline", "label", "slug", "tag", "cta", "handle", "key", "id", "slogan")
#: Where a field name splits into words: snake_case, kebab-case, camelCase.
FIELD_PARTS = re.compile(r"[_\W]+|(?<=[a-z])(?=[A-Z])")
WORD = re.compile(r"[^\W\d_]{3,}(?:['’-][^\W\d_]+)*")
#: An instruction to avoid words, and the words it names: a JSON list after it, or the rest of the clause.
AVOID = r"\b(?:avoid|avoids|never|banned|forbidden|forbid|exclude|don't|do not|must not)\b"
AVOID_LIST = re.compile(AVOID + r"\W{0,6}\[([^\]]*)\]", re.IGNORECASE)
AVOID_CLAUSE = re.compile(AVOID + r"([^.;\n\[]*)", re.IGNORECASE)


def seed_of(body: Any) -> int:
    """A seed from the whole request: the same request, the same answer."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")


def tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def prompt_tokens(texts: Iterable[str], images: int) -> int:
    return sum(tokens(t) for t in texts if t) + images * IMAGE_TOKENS


def vocabulary(texts: Iterable[str]) -> list[str]:
    """The words a model may answer with: the messages' words in order of first use, minus stopwords and the
    words the prompt says to avoid; a word always written capitalised (a brand) keeps its capital."""
    texts = list(texts)
    avoided = {w.lower() for t in texts for m in AVOID_LIST.finditer(t) for w in WORD.findall(m.group(1))}
    avoided |= {w.lower() for t in texts for m in AVOID_CLAUSE.finditer(t) for w in WORD.findall(m.group(1))}
    order: dict[str, None] = {}
    lowered: set[str] = set()
    capitalised: dict[str, str] = {}
    for text in texts:
        for match in WORD.finditer(text):
            word, low = match.group(), match.group().lower()
            if low in STOPWORDS or low in avoided:
                continue
            order[low] = None
            before = text[max(0, match.start() - 8) : match.start()].rstrip()
            if word == low:
                lowered.add(low)
            elif before and before[-1] not in ".!?:\"'[{":  # mid-sentence: a name
                capitalised.setdefault(low, word)
    return [capitalised.get(w, w) if w not in lowered else w for w in order] or list(FALLBACK_WORDS)


class Writer:
    """Answers one request: sentences and schema instances from its vocabulary and its seed."""

    def __init__(self, texts: Iterable[str], seed: int, inject: str | None = None):
        self.words = vocabulary(texts)
        self.random = random.Random(seed)
        self.inject = inject or None
        self._root: dict[str, Any] = {}

    # Text -------------------------------------------------------------------------------------------------

    def _phrase(self, count: int, lead: bool = False) -> list[str]:
        """`count` words of the vocabulary with a connector now and then; the injected word among them (first
        when `lead`, so a length cut keeps it)."""
        chosen = self.random.sample(self.words, min(count, len(self.words)))
        chosen += self.random.choices(self.words, k=count - len(chosen))
        words: list[str] = []
        for i, word in enumerate(chosen):
            if i and i < count - 1 and self.random.random() < 0.3:
                words.append(self.random.choice(CONNECTORS))
            words.append(word)
        if self.inject:
            words.insert(0 if lead else self.random.randrange(len(words) + 1), self.inject)
        return words

    def _capital(self, word: str) -> str:
        """The word capitalised, unless it is the injected one (kept as given, so a client finds it)."""
        return word if word == self.inject else word[:1].upper() + word[1:]

    def sentence(self, lead: bool = False) -> str:
        words = self._phrase(self.random.randint(6, 14), lead)
        return " ".join([self._capital(words[0]), *words[1:]]) + "."

    def label(self, lead: bool = False) -> str:
        return " ".join(map(self._capital, self._phrase(self.random.randint(2, 4), lead)))

    def text(self) -> str:
        """A plain-text answer: a few sentences."""
        return " ".join(self.sentence() for _ in range(self.random.randint(2, 4)))

    def json_object(self) -> dict[str, Any]:
        """JSON mode without a schema: a small object."""
        return {
            "summary": self.sentence(),
            "keywords": [self.random.choice(self.words) for _ in range(3)],
            "score": round(self.random.uniform(0, 1), 2),
        }

    # Schema instances -------------------------------------------------------------------------------------

    def instance(self, schema: dict[str, Any] | bool) -> Any:
        """A value valid against `schema` (a root: its `$defs` are what `$ref`s point into)."""
        self._root = schema if isinstance(schema, dict) else {}
        return self._value(schema, 0, "")

    def resolve(self, schema: dict[str, Any] | bool) -> dict[str, Any]:
        """`schema` with its `$ref` followed (sibling keywords kept) and its `allOf` merged."""
        if not isinstance(schema, dict):
            return {}
        while "$ref" in schema:
            target = self._pointer(schema["$ref"])
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in map(self.resolve, schema["allOf"]):
                merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
                merged["required"] = [*merged.get("required", []), *part.get("required", [])]
                merged |= {k: v for k, v in part.items() if k not in ("properties", "required")}
            schema = merged
        return schema

    def _pointer(self, ref: str) -> dict[str, Any]:
        node: Any = self._root
        for step in ref.removeprefix("#").strip("/").split("/") if ref != "#" else []:
            node = node[step.replace("~1", "/").replace("~0", "~")]
        return node

    def _value(self, schema: dict[str, Any] | bool, depth: int, key: str) -> Any:
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.random.choice(schema["enum"])
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            return self._value({**rest, **self.resolve(self._branch(branches, depth))}, depth, key)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = self._branch([{"type": k} for k in kind], depth)["type"]
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        make = {
            "object": self._object, "array": self._array, "string": self._string, "integer": self._integer,
            "number": self._number,
        }  # fmt: skip
        if kind == "boolean":
            return self.random.random() < 0.5
        if kind == "null":
            return None
        return make[kind](schema, depth, key)

    def _branch(self, branches: list[Any], depth: int) -> dict[str, Any]:
        """One alternative: null when deep or now and then, else one of the others."""
        nulls = [b for b in branches if isinstance(b, dict) and b.get("type") == "null"]
        others = [b for b in branches if b not in nulls]
        if nulls and (not others or depth >= MAX_DEPTH or self.random.random() < CHOOSE_NULL):
            return nulls[0]
        return self.random.choice(others)

    def _object(self, schema: dict[str, Any], depth: int, key: str) -> dict[str, Any]:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        out = {
            name: self._value(sub, depth + 1, name)
            for name, sub in properties.items()
            if name in required or (depth < MAX_DEPTH and self.random.random() >= SKIP_OPTIONAL)
        }
        extra = schema.get("additionalProperties")
        if not properties and isinstance(extra, dict):
            low = schema.get("minProperties", 0 if depth >= MAX_DEPTH else 1)
            count = self.random.randint(low, max(low, min(schema.get("maxProperties", low + 2), low + 2)))
            names = iter(self.random.sample(self.words, len(self.words)))
            for _ in range(count):
                name = next(names, None) or f"item{len(out) + 1}"
                out[name] = self._value(extra, depth + 1, name)
        return out

    def _array(self, schema: dict[str, Any], depth: int, key: str) -> list[Any]:
        prefix = schema.get("prefixItems", [])
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        want = low if depth >= MAX_DEPTH else self.random.randint(max(low, 1), max(low, 1) + 2)
        count = max(want, low, len(prefix))
        count = count if high is None else min(count, high)
        items = (
            schema.get("items") or {}
        )  # `false` (a closed tuple) is never reached: count stops at its prefix
        out: list[Any] = [self._value(sub, depth + 1, key) for sub in prefix[:count]]
        seen = {json.dumps(v, sort_keys=True) for v in out}
        for _ in range(4 * count + 4):
            if len(out) >= count:
                break
            value = self._value(items, depth + 1, key)
            mark = json.dumps(value, sort_keys=True)
            if schema.get("uniqueItems") and mark in seen:
                continue
            seen.add(mark)
            out.append(value)
        return out

    def _string(self, schema: dict[str, Any], depth: int, key: str) -> str:
        fmt = schema.get("format")
        formatted = self._formatted(fmt) if fmt else None
        if formatted is not None:
            return formatted
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        parts = {p.lower() for p in FIELD_PARTS.split(key)}
        short = (high is not None and high <= 40) or not parts.isdisjoint(SHORT_FIELDS)
        text = self.label(lead=high is not None) if short else self.sentence(lead=high is not None)
        while len(text) < low:
            text += " " + self.random.choice(self.words)
        if high is not None and len(text) > high:
            cut = text[:high]
            space = cut.rfind(" ")
            cut = cut[:space] if space >= max(low, 1) else cut
            text = cut.rstrip(" ,;") if len(cut.rstrip(" ,;")) >= low else cut
        return text

    def _formatted(self, fmt: str) -> str | None:
        moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=self.random.randrange(525_600))
        word = self.random.choice(self.words).lower().encode("ascii", "ignore").decode() or "story"
        return {
            "date-time": moment.isoformat().replace("+00:00", "Z"),
            "date": moment.date().isoformat(),
            "time": moment.time().isoformat() + "Z",
            "duration": f"PT{self.random.randint(1, 90)}S",
            "uuid": str(uuid.UUID(int=self.random.getrandbits(128), version=4)),
            "email": f"{word}@example.com",
            "uri": f"https://example.com/{word}",
            "url": f"https://example.com/{word}",
            "hostname": "example.com",
            "ipv4": f"192.0.2.{self.random.randint(1, 254)}",
            "ipv6": f"2001:db8::{self.random.randint(1, 65535):x}",
        }.get(fmt)

    def _bounds(self, schema: dict[str, Any], integer: bool) -> tuple[float, float]:
        """The closed range a number must fall in; open bounds tightened (by 1 for integers)."""
        step = 1 if integer else 0.01
        low, high = schema.get("minimum"), schema.get("maximum")
        if "exclusiveMinimum" in schema:
            low = max(x for x in (low, schema["exclusiveMinimum"] + step) if x is not None)
        if "exclusiveMaximum" in schema:
            high = min(x for x in (high, schema["exclusiveMaximum"] - step) if x is not None)
        if low is None and high is None:
            low, high = (1, 10) if integer else (0, 10)
        low = high - 10 if low is None else low
        high = low + 10 if high is None else high
        return low, high

    def _integer(self, schema: dict[str, Any], depth: int, key: str) -> int:
        low, high = self._bounds(schema, integer=True)
        step = schema.get("multipleOf", 1)
        first, last = math.ceil(low / step), math.floor(high / step)
        return int(self.random.randint(first, max(first, last)) * step)

    def _number(self, schema: dict[str, Any], depth: int, key: str) -> float:
        low, high = self._bounds(schema, integer=False)
        step = schema.get("multipleOf")
        if step:
            places = max(0, -math.floor(math.log10(step))) + 2
            first, last = math.ceil(low / step), math.floor(high / step)
            return round(self.random.randint(first, max(first, last)) * step, places)
        value = round(self.random.uniform(low, high), 2)
        return value if low <= value <= high else (low + high) / 2


# Faulty answers ------------------------------------------------------------------------------------------


def schema_in(texts: Iterable[str]) -> dict[str, Any] | None:
    """A JSON schema written into the messages (JSON mode: "follow this JSON schema: {...}"), which a model
    that follows instructions would answer to; None when the messages hold none."""
    decoder = json.JSONDecoder()
    for text in texts:
        for start in (i for i, c in enumerate(text) if c == "{"):
            try:
                value, _ = decoder.raw_decode(text, start)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict) and value.get("type") == "object" and "properties" in value:
                return value
    return None


def cut(text: str) -> str:
    """A JSON text cut mid-object: never parses, as an answer stopped half-way."""
    return text[: max(1, len(text) * 3 // 5)]


def violate(value: Any, schema: dict[str, Any], writer: Writer) -> Any:
    """Valid JSON that breaks `schema`: a required field dropped, else a field it forbids, else the wrong type."""
    root = writer.resolve(schema) if schema else {}
    if isinstance(value, dict):
        required = [name for name in root.get("required", []) if name in value]
        if required:
            dropped = writer.random.choice(required)
            return {k: v for k, v in value.items() if k != dropped}
        if root.get("additionalProperties") is False:
            return {**value, "unexpected_field": True}
    return [value]


def prefix_object(value: dict[str, Any], chars: int) -> dict[str, Any]:
    """The leading fields of `value` that fit in `chars` characters of JSON: what a cut tool call holds."""
    kept: dict[str, Any] = {}
    for name, item in value.items():
        if len(json.dumps({**kept, name: item})) > chars:
            break
        kept[name] = item
    return kept
