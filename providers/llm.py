"""The language-model seam: ask any model for an answer shaped like a pydantic model, and get it validated.

An adapter (providers/openai_chat.py, providers/anthropic.py) writes one method, `send`, in its SDK's terms: a
question (system text, user text, pictures) and a JSON schema in; the answer's JSON text, a refusal or a cut-off,
and the tokens counted, out. This base owns what must hold on every endpoint:

- The answer is validated against its model (exact counts included: a planner asks for a model of exactly the
  stories it wants), then for the brand's avoided words.
  An answer that fails is sent back once with what was wrong; a second failure ends the step with
  ProviderError(invalid_output) naming the field — never a half-read answer. Avoided words alone are taken out
  after the second answer: a repaired answer ships, one with the word never does.
- A refusal (moderation_input) and an answer cut off at max tokens (invalid_output) fail at once, clearly.
- A 429 is waited out (its Retry-After), a 5xx or dropped connection tried again: failed calls are not billed.
- Each call is priced from the model's card and entered in the ledger of the campaign it is charged to
  (cutroom/metering.py): held before it is sent, refused when it would pass the budget, settled at its tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from cutroom import metering, stopping
from cutroom.avoid import avoided_in, without
from cutroom.boundary import quote
from cutroom.capabilities import Capability
from cutroom.settings import settings
from providers.cards import ModelCard
from providers.errors import ErrorKind, ProviderError
from providers.vendor import VendorAdapter, settings_value

T = TypeVar("T", bound=BaseModel)

#: Rough tokens per character of text, for the estimate held before a call (the bill uses the vendor's count).
CHARS_PER_TOKEN = 4
#: Tokens one picture costs, for the estimate: OpenAI's count for a 1024x1024 image at high detail (u).
PICTURE_TOKENS = 765
#: Rate limits waited out per call, and the longest wait; connection failures and 5xx tried again per call.
RATE_LIMIT_WAITS = 4
LONGEST_WAIT_S = 60.0
TRANSIENT_TRIES = 3
#: A typical judging or rewriting call, for a story's estimate before anything runs: a page of text and a picture
#: read, a verdict written.
TYPICAL_IN_TOKENS = 1500 + 765
TYPICAL_OUT_TOKENS = 700
#: Problems quoted back to the model in a repair round, and in the error when the second answer fails too.
PROBLEMS_SHOWN = 8


class Picture(BaseModel, frozen=True):
    """An image shown to the model (a keyframe, a frame of a clip)."""

    data: bytes
    mime: str = "image/jpeg"

    @property
    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode()


class Question(BaseModel, frozen=True):
    purpose: str  # plan | judge | refine | rephrase: names the step in errors and in the ledger
    system: str
    user: str
    pictures: tuple[Picture, ...] = ()


@dataclass(frozen=True)
class Reply:
    text: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    refusal: str | None = None
    truncated: bool = False


class LanguageModel(VendorAdapter):
    """One endpoint's models; a planner, judge or refiner holds one and asks it questions."""

    capability: ClassVar[Capability] = Capability.planner

    def __init__(self, capability: Capability = Capability.planner, model: str | None = None, **kwargs: Any):
        self.capability = capability  # type: ignore[misc]  # the cards looked up are this capability's
        vendor = kwargs.get("vendor")
        env = (vendor or self._declared()).model_env
        chosen = model or (settings_value(env) if env else None)
        super().__init__(None, **kwargs)
        # A model the cards do not know (an Ollama or vLLM name) is asked for as it is, priced at nothing.
        self.model = chosen or self.model

    @classmethod
    def _declared(cls) -> Any:
        from providers import declarations

        return declarations.vendor(cls.vendor_name)

    # -- what an adapter writes --------------------------------------------------------------------------------

    def send(
        self, question: Question, schema: dict[str, Any], name: str, model: str, max_tokens: int
    ) -> Reply:
        raise NotImplementedError

    # -- asking ------------------------------------------------------------------------------------------------

    def ask(
        self,
        question: Question,
        answer: type[T],
        *,
        model: str | None = None,
        avoid: tuple[str, ...] = (),
    ) -> T:
        """The model's answer as `answer`, validated and free of avoided words."""
        model = model or self.model
        schema = self.schema_of(answer)
        reply = self._call(question, schema, answer.__name__, model)
        parsed, problems = self._read(reply, question, answer, model, avoid)
        if not problems:
            return parsed  # type: ignore[return-value]
        repair = question.model_copy(
            update={"user": f"{question.user}\n\n{_repair_note(reply.text, problems)}"}
        )
        reply = self._call(repair, schema, answer.__name__, model)
        parsed, problems = self._read(reply, question, answer, model, avoid)
        if not problems:
            return parsed  # type: ignore[return-value]
        if parsed is not None and all(p.startswith(AVOIDED) for p in problems):
            return _scrubbed(parsed, avoid)
        shown = "; ".join(problems[:PROBLEMS_SHOWN])
        raise ProviderError(
            ErrorKind.invalid_output,
            f"{question.purpose}: {model}'s answer did not follow its form twice: {shown}",
            provider=self.name,
        )

    def schema_of(self, answer: type[BaseModel]) -> dict[str, Any]:
        """The JSON schema sent with a question; an adapter whose endpoint is strict about schemas narrows it."""
        return answer.model_json_schema()

    def card_of(self, model: str) -> ModelCard | None:
        return next((c for c in self.vendor.cards(self.capability) if c.model == model), None)

    def price(self, model: str, input_tokens: int, output_tokens: int) -> float:
        card = self.card_of(model)
        return card.tokens.of(input_tokens, output_tokens) if card and card.tokens else 0.0

    def typical_call_usd(self, model: str | None = None) -> float:
        return self.price(model or self.model, TYPICAL_IN_TOKENS, TYPICAL_OUT_TOKENS)

    def estimate_call(self, question: Question, schema: dict[str, Any], model: str) -> float:
        """The most a call can cost: its text and pictures read, its max tokens written."""
        text = len(question.system) + len(question.user) + len(json.dumps(schema))
        tokens_in = text // CHARS_PER_TOKEN + PICTURE_TOKENS * len(question.pictures)
        return self.price(model, tokens_in, settings().llm_max_tokens)

    def _read(
        self,
        reply: Reply,
        question: Question,
        answer: type[T],
        model: str,
        avoid: tuple[str, ...],
    ) -> tuple[T | None, list[str]]:
        if reply.refusal is not None:
            raise ProviderError(
                ErrorKind.moderation_input,
                f"{question.purpose}: {model} refused to answer: {quote(reply.refusal, 200)}",
                provider=self.name,
            )
        if reply.truncated:
            raise ProviderError(
                ErrorKind.invalid_output,
                f"{question.purpose}: {model}'s answer was cut off at {settings().llm_max_tokens} tokens; "
                "raise CUTROOM_LLM_MAX_TOKENS or ask for fewer stories",
                provider=self.name,
            )
        if not reply.text:
            return None, ["the answer was empty: answer with JSON that follows the schema"]
        try:
            parsed = answer.model_validate_json(reply.text)
        except ValidationError as exc:
            return None, [_problem(error) for error in exc.errors()]
        problems = [
            f"{AVOIDED} '{word}' in {where}"
            for where, text in _strings(parsed)
            for word in avoided_in(text, avoid)
        ]
        return parsed, problems

    def _call(self, question: Question, schema: dict[str, Any], name: str, model: str) -> Reply:
        """One paid call, held in the ledger before it is sent and settled at the tokens it used."""
        meter = metering.meter()
        key = _call_key(self.name, model, question, name)
        what = f"{self.name}/{model} {question.purpose}"
        if meter is not None:
            estimate = self.estimate_call(question, schema, model)
            meter.ledger.hold(key, self.name, model, estimate, meter.budget_usd, meter.story_id, what)
        try:
            reply = self._patiently(question, schema, name, model)
        except BaseException as exc:
            if meter is not None:
                meter.ledger.released(key, f"{question.purpose} call failed: {str(exc)[:200]}")
            raise
        if meter is not None:
            cost = self.price(model, reply.input_tokens, reply.output_tokens)
            note = f"{what}: {reply.input_tokens} tokens in, {reply.output_tokens} out"
            meter.ledger.settled(key, cost, None, note=note)
        return reply

    def _patiently(self, question: Question, schema: dict[str, Any], name: str, model: str) -> Reply:
        """Rate limits waited out and hiccups tried again: a call that got no answer was not billed."""
        waits = failures = 0
        while True:
            stopping.check(f"asking {self.name} ({question.purpose})")
            try:
                with self.calling(f"{question.purpose} on {model}"):
                    return self.send(question, schema, name, model, settings().llm_max_tokens)
            except ProviderError as exc:
                if exc.kind is ErrorKind.rate_limited and waits < RATE_LIMIT_WAITS:
                    waits += 1
                    time.sleep(min(exc.retry_after or 2.0**waits, LONGEST_WAIT_S) * self.time_scale)
                elif exc.kind is ErrorKind.generation_failed and failures < TRANSIENT_TRIES - 1:
                    failures += 1
                    time.sleep(0.5 * 2**failures * self.time_scale)
                else:
                    raise


#: How an avoided-word problem starts: the one problem taken out by hand when the model repeats it.
AVOIDED = "uses the avoided word"


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "the answer"
    return f"{where}: {error.get('msg', 'invalid')}"


def _repair_note(text: str | None, problems: list[str]) -> str:
    shown = "\n".join(f"- {p}" for p in problems[:PROBLEMS_SHOWN])
    return (
        "Your previous answer could not be used:\n"
        f"{shown}\n"
        f"Previous answer (first 2000 characters): {(text or '')[:2000]}\n"
        "Answer again in full, as JSON that follows the schema, fixing every problem above."
    )


def _strings(value: Any, where: str = "") -> list[tuple[str, str]]:
    """Every text in an answer, with where it is (stories.0.copy.body)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True)
    if isinstance(value, str):
        return [(where or "the answer", value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, f"{where}.{k}" if where else str(k))]
    if isinstance(value, list | tuple):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{where}.{i}" if where else str(i))]
    return []


def _scrubbed(parsed: T, avoid: tuple[str, ...]) -> T:
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return without(value, avoid)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return type(parsed).model_validate(clean(parsed.model_dump(by_alias=True)))


def _call_key(provider: str, model: str, question: Question, name: str) -> str:
    pictures = [hashlib.sha256(p.data).hexdigest() for p in question.pictures]
    blob = json.dumps([provider, model, question.purpose, question.system, question.user, pictures, name])
    return "llm-" + hashlib.sha256(blob.encode()).hexdigest()
