"""Any OpenAI-compatible chat endpoint as Cutroom's language model, through the official `openai` SDK: OpenAI,
Azure OpenAI, Gemini's OpenAI-compatible endpoint, OpenRouter, vLLM, Ollama, LM Studio — a base URL
(OPENAI_BASE_URL), a key (OPENAI_API_KEY) and a model (OPENAI_MODEL, or a card's name in the brief).

Structured output is `response_format: json_schema` with `strict: true` and the SDK's own strict form of the
answer's schema (`to_strict_json_schema`, as `chat.completions.parse` sends it). An endpoint that refuses
`json_schema` (its 400 names `response_format`) is asked again in JSON mode (`json_object`), the schema written
into the system message, and stays in JSON mode for the rest of the process; the answer is validated the same
way either way. Images go as `image_url` parts with data URIs. `max_retries=0`: the seam decides what to retry.
"""

from __future__ import annotations

import json
from typing import Any

import openai
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel

from cutroom.capabilities import Capability
from providers.errors import ErrorKind, ProviderError
from providers.llm import LanguageModel, Question, Reply
from providers.llm_planner import LanguagePlanner
from providers.llm_refiner import LanguageRefiner
from providers.openai import NAME, OpenAIErrors
from providers.vision_judge import VisionJudge


class OpenAIChat(OpenAIErrors, LanguageModel):
    vendor_name = NAME

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Set once the endpoint refused a json_schema response format: JSON mode from then on.
        self.json_mode = False

    def make_client(self) -> openai.OpenAI:
        return openai.OpenAI(api_key=self.api_key, **self.sdk_settings())

    def schema_of(self, answer: type[BaseModel]) -> dict[str, Any]:
        return to_strict_json_schema(answer)

    def send(
        self, question: Question, schema: dict[str, Any], name: str, model: str, max_tokens: int
    ) -> Reply:
        if not self.json_mode:
            try:
                return self._complete(question, schema, name, model, max_tokens)
            except ProviderError as exc:
                if exc.kind is not ErrorKind.invalid_input or "response_format" not in exc.detail:
                    raise
                self.json_mode = True
        return self._complete(question, schema, name, model, max_tokens)

    def _complete(
        self, question: Question, schema: dict[str, Any], name: str, model: str, max_tokens: int
    ) -> Reply:
        system = question.system
        if self.json_mode:
            response_format: dict[str, Any] = {"type": "json_object"}
            system += (
                f"\n\nAnswer with one JSON object only, following this JSON schema:\n{json.dumps(schema)}"
            )
        else:
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            }
        user: Any = question.user
        if question.pictures:
            user = [
                {"type": "text", "text": question.user},
                *({"type": "image_url", "image_url": {"url": p.data_uri}} for p in question.pictures),
            ]
        try:
            completion = self.client.chat.completions.create(
                model=model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                response_format=response_format,  # type: ignore[arg-type]
                max_completion_tokens=max_tokens,
            )
        except openai.BadRequestError as exc:
            if getattr(exc, "param", None) == "response_format" and not self.json_mode:
                raise ProviderError(
                    ErrorKind.invalid_input, "response_format refused", provider=self.name
                ) from exc
            raise
        choice = completion.choices[0]
        usage = completion.usage
        refusal = choice.message.refusal
        if choice.finish_reason == "content_filter" and refusal is None:
            refusal = "the endpoint's content filter stopped the answer"
        return Reply(
            text=choice.message.content,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            refusal=refusal,
            truncated=choice.finish_reason == "length",
        )


class OpenAIPlanner(LanguagePlanner):
    def __init__(self) -> None:
        super().__init__(OpenAIChat(Capability.planner))


class OpenAIJudge(VisionJudge):
    def __init__(self) -> None:
        super().__init__(OpenAIChat(Capability.judge))


class OpenAIRefiner(LanguageRefiner):
    def __init__(self) -> None:
        super().__init__(OpenAIChat(Capability.refiner))
