"""Anthropic's Messages API as Cutroom's language model, through the official `anthropic` SDK (key
ANTHROPIC_API_KEY, base URL ANTHROPIC_BASE_URL, model ANTHROPIC_MODEL or a card's name in the brief).

Structured output is a forced tool call: one tool whose `input_schema` is the answer's JSON schema and
`tool_choice: {type: tool}`, so the answer is the `tool_use` block's input — the way the Messages API has
taken a schema since tools came (the SDK's newer `output_format` is not needed for this). `stop_reason`
`max_tokens` is a cut-off answer, `refusal` a refusal. Images go as base64 `image` blocks before the text.
`max_retries=0`: the seam decides what to retry (529 overloaded is a transient 5xx).
"""

from __future__ import annotations

import json
from typing import Any

import anthropic

from cutroom.capabilities import Capability
from providers.errors import ErrorKind
from providers.llm import LanguageModel, Question, Reply
from providers.llm_planner import LanguagePlanner
from providers.llm_refiner import LanguageRefiner
from providers.vision_judge import VisionJudge

NAME = "anthropic"
#: What Anthropic says when the account cannot pay (a 400 invalid_request_error).
NO_CREDIT = "credit balance is too low"


class AnthropicModel(LanguageModel):
    vendor_name = NAME
    transport_errors = (anthropic.APIConnectionError,)
    unreadable_errors = (anthropic.APIResponseValidationError,)

    def make_client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            api_key=self.api_key,
            base_url=self.base_url,
            http_client=self._http,
            timeout=self.timeout,
            max_retries=0,
        )

    def map_error(self, exc: Exception, what: str) -> Any:
        if isinstance(exc, anthropic.APIStatusError):
            return self.from_response(exc.response, what)
        return super().map_error(exc, what)

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        if NO_CREDIT in detail.lower():
            return ErrorKind.insufficient_credits
        return None

    def send(
        self, question: Question, schema: dict[str, Any], name: str, model: str, max_tokens: int
    ) -> Reply:
        pictures = [
            {"type": "image", "source": {"type": "base64", "media_type": p.mime, "data": p.base64}}
            for p in question.pictures
        ]
        message = self.client.messages.create(
            model=model,
            max_tokens=max_tokens,
            system=question.system,
            messages=[{"role": "user", "content": [*pictures, {"type": "text", "text": question.user}]}],
            tools=[
                {
                    "name": name,
                    "description": "Give your answer as this tool's input.",
                    "input_schema": schema,
                }
            ],
            tool_choice={"type": "tool", "name": name},
        )
        used = next((block for block in message.content if block.type == "tool_use"), None)
        return Reply(
            text=json.dumps(used.input) if used is not None else None,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            refusal="the model declined to answer" if message.stop_reason == "refusal" else None,
            truncated=message.stop_reason == "max_tokens",
        )


class AnthropicPlanner(LanguagePlanner):
    def __init__(self) -> None:
        super().__init__(AnthropicModel(Capability.planner))


class AnthropicJudge(VisionJudge):
    def __init__(self) -> None:
        super().__init__(AnthropicModel(Capability.judge))


class AnthropicRefiner(LanguageRefiner):
    def __init__(self) -> None:
        super().__init__(AnthropicModel(Capability.refiner))
