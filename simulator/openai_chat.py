"""OpenAI Chat Completions as the `openai` 3.63 SDK calls it: `POST /v1/chat/completions`, for planning,
judging and prompt refining with Structured Outputs.

Sources: ../shared/providers/openai.md (section 2, the connection and the error shape) and the installed SDK's
types (completion_create_params, chat_completion, chat_model, shared_params/response_format_json_schema) and
its `chat.completions.parse` helper, which wins where the two disagree. Mounted inside the Images contract
(simulator/openai.py), whose key check, headers and error shape it reuses.

What is simulated: `messages` (system/developer/user/assistant/tool; content a string or parts; a user's
`image_url` parts as https links or `data:image/…;base64,` URIs, each decoded, any other scheme refused with a
400), `response_format` (`text`, `json_object` — the messages must say "JSON" —, `json_schema` with its name
pattern and, when `strict`, OpenAI's strict-schema rules: every object `additionalProperties: false` and every
property required, the root an object), `max_completion_tokens` and the legacy `max_tokens` (refused by the
reasoning models), `temperature` (gpt-5, o3 and o4-mini take only 1), `seed`, `n`. The answer is built by
simulator/answers.py: a schema answer valid by construction, the same for the same request, its strings made of
the messages' words (and SimConfig.llm_inject's word). Usage: a prompt token per four characters of the
messages plus 765 per image (85 at `detail: low`); completion tokens the same of the answer, plus reasoning
tokens on the reasoning models; an answer over the limit is cut with `finish_reason: "length"`.

Faults (drawn per request like the image vendors' outcomes): invalid_json → content cut mid-object;
schema_violation → valid JSON missing a required field (or with a forbidden one, or of the wrong type);
refusal → `content: null`, `refusal: "I'm sorry, I can't help with that."`; truncated → cut half-way with
`finish_reason: "length"`. The JSON faults leave a plain-text answer alone. The frame's 429 comes as
`rate_limit_exceeded` with `retry-after`, its 5xx as `server_error`.

Unverified (u): the wording and `code` of most refusals (image, strict-schema and parameter messages follow
what public reports quote), which models count as reasoning ones and their output limits, the latency
(0.3 s + 80 tokens/s), the reasoning-token count. Not simulated: streaming (refused), tool calls (a request with
`tools` gets an ordinary answer), audio, logprobs, x-ratelimit-* headers, the Images contract's `_sim/quota`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from simulator import answers, media
from simulator import openai as images
from simulator.core import Fault, Simulator
from simulator.jobs import start_job

VENDOR = "openai-chat"
PREFIX = "/openai/v1/chat"
REFUSAL = "I'm sorry, I can't help with that."
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
FORMATS = ("text", "json_object", "json_schema")
SCHEMA_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
LOW_DETAIL_TOKENS = 85
FIELDS = {
    "messages", "model", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n", "parallel_tool_calls",
    "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention",
    "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
    "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
    "web_search_options",
}  # fmt: skip


@dataclass(frozen=True)
class ChatModel:
    """What a chat model accepts: its output limit, and whether it reasons (reasoning tokens, no `max_tokens`)
    and samples (takes a `temperature` other than 1)."""

    max_output: int
    reasoning: bool = False
    sampling: bool = True
    #: Takes `response_format: json_schema` (structured outputs came with gpt-4o-2024-08-06; earlier models and
    #: many OpenAI-compatible servers take JSON mode only).
    schemas: bool = True


_4O, _41 = ChatModel(16_384), ChatModel(32_768)
_O, _5 = (
    ChatModel(100_000, reasoning=True, sampling=False),
    ChatModel(128_000, reasoning=True, sampling=False),
)
#: GPT-5.1 and later reason, but take a temperature at their default `reasoning_effort: none` (u).
_5X = ChatModel(128_000, reasoning=True)
MODELS: dict[str, ChatModel] = {
    **dict.fromkeys(("gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-2024-11-20", "gpt-4o-mini",
                     "gpt-4o-mini-2024-07-18", "gpt-5-chat-latest"), _4O),
    **dict.fromkeys(("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4.1-2025-04-14",
                     "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14"), _41),
    **dict.fromkeys(("o3", "o3-2025-04-16", "o4-mini", "o4-mini-2025-04-16"), _O),
    **dict.fromkeys(("gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-2025-08-07", "gpt-5-mini-2025-08-07",
                     "gpt-5-nano-2025-08-07"), _5),
    **dict.fromkeys(("gpt-5.1", "gpt-5.2", "gpt-5.4", "gpt-5.4-mini", "gpt-5.4-nano", "gpt-5.5"), _5X),
    "gpt-3.5-turbo": ChatModel(4_096, schemas=False),
}  # fmt: skip


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """The frame's injected faults in OpenAI's shape: a 429 on tokens per minute with retry-after, or the
    Images contract's 5xx."""
    if status != 429:
        return images.error_response(status, message, retry_after)
    wait = retry_after or 1.0
    message = (
        f"Rate limit reached for requests in organization {images.ORGANIZATION} on tokens per min (TPM): "
        f"Limit {images.LIMIT_TOKENS}, Used {images.LIMIT_TOKENS}. Please try again in {wait:g}s."
    )
    headers = {"retry-after": f"{math.ceil(wait)}", "x-request-id": f"req_{uuid.uuid4().hex}"}
    return images.ApiError(429, message, type="tokens", code="rate_limit_exceeded").response(headers)


@dataclass
class Ask:
    """A validated request: what the model reads and what shape it answers in."""

    model: str
    spec: ChatModel
    texts: list[str]
    images: int
    image_tokens: int
    links: list[str]
    format: str
    schema: dict[str, Any] | None
    max_tokens: int
    n: int


def _invalid(param: str, message: str, code: str | None = "invalid_value") -> images.ApiError:
    return images.ApiError(400, message, param=param, code=code)


def _missing(param: str) -> images.ApiError:
    return _invalid(param, f"Missing required parameter: '{param}'.", "missing_required_parameter")


def _integer(body: dict[str, Any], param: str, low: int) -> int | None:
    value = body.get(param)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(param, f"Invalid type for '{param}': expected an integer.", "invalid_type")
    if value < low:
        raise _invalid(
            param, f"Invalid '{param}': integer below minimum value. Expected a value >= {low}, but got "
            f"{value} instead.", "integer_below_min_value",
        )  # fmt: skip
    return value


def check_model(body: dict[str, Any]) -> tuple[str, ChatModel]:
    name = body.get("model")
    if name is None:
        raise _missing("model")
    if name not in MODELS:
        raise images.ApiError(
            404, f"The model `{name}` does not exist or you do not have access to it.", code="model_not_found"
        )
    return name, MODELS[name]


def check_image(url: Any, param: str) -> str | None:
    """A part's image: None when a data URI decodes as an image, the link when it is an http(s) one."""
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return url
    decoded = media.data_uri(url)
    if decoded is None:
        raise _invalid(
            param, f"Invalid '{param}'. Expected a base64-encoded data URL with an image MIME type (e.g. "
            "'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU=') or an https URL.", "invalid_image_url",
        )  # fmt: skip
    mime, data = decoded
    if not mime.startswith("image/"):
        raise _invalid(param, "Invalid MIME type. Only image types are supported.", "invalid_image_format")
    if media.image_size(data) is None or mime.removeprefix("image/") not in IMAGE_FORMATS:
        raise _invalid(
            param, "You uploaded an unsupported image. Please make sure your image has of one the following "
            f"formats: {list(IMAGE_FORMATS)}.", "invalid_image_format",
        )  # fmt: skip
    return None


def check_messages(messages: Any) -> tuple[list[str], int, int, list[str]]:
    """The messages' texts, image count, image tokens and image links to fetch."""
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid(
            "messages", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
            "empty array instead.", "empty_array",
        )  # fmt: skip
    texts: list[str] = []
    count = tokens = 0
    links: list[str] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            quoted = ", ".join(f"'{r}'" for r in ROLES[:-1])
            raise _invalid(
                f"messages[{i}].role", f"Invalid value: '{role}'. Supported values are: {quoted}, and "
                f"'{ROLES[-1]}'.",
            )  # fmt: skip
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for j, part in enumerate(parts):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image_url":
                if role != "user":
                    raise _invalid(
                        f"messages[{i}].content[{j}].type", "Image URLs are only allowed for messages with role "
                        f"'user', but this message with role '{role}' contains an image URL.",
                    )  # fmt: skip
                image = part.get("image_url") or {}
                link = check_image(image.get("url"), f"messages[{i}].content[{j}].image_url.url")
                links += [link] if link else []
                count += 1
                tokens += LOW_DETAIL_TOKENS if image.get("detail") == "low" else answers.IMAGE_TOKENS
            elif role != "assistant" or kind != "refusal":
                raise _invalid(
                    f"messages[{i}].content[{j}].type", f"Invalid value: '{kind}'. Supported values are: 'text' "
                    "and 'image_url'.",
                )  # fmt: skip
    return texts, count, tokens, links


def strict_problem(schema: Any) -> str | None:
    """Why OpenAI's strict mode refuses `schema`, or None."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        kind = schema.get("type") if isinstance(schema, dict) else None
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{kind}\"'."
    return _strict_node(schema, ())


def _strict_node(node: Any, context: tuple[str, ...]) -> str | None:
    if isinstance(node, list):
        return next((p for i, item in enumerate(node) if (p := _strict_node(item, (*context, str(i))))), None)
    if not isinstance(node, dict):
        return None
    properties = node.get("properties")
    if node.get("type") == "object" or isinstance(properties, dict):
        if node.get("additionalProperties") is not False:
            return f"In context={context}, 'additionalProperties' is required to be supplied and to be false."
        missing = [k for k in properties or {} if k not in node.get("required", [])]
        if missing:
            return (
                f"In context={context}, 'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
    for keyword in ("properties", "$defs", "definitions"):
        for name, sub in (node.get(keyword) or {}).items():
            if problem := _strict_node(sub, (*context, keyword, name)):
                return problem
    for keyword in ("items", "anyOf", "allOf", "prefixItems"):
        if keyword in node and (problem := _strict_node(node[keyword], (*context, keyword))):
            return problem
    return None


def check_format(
    body: dict[str, Any], texts: list[str], model: str, chat: ChatModel
) -> tuple[str, dict[str, Any] | None]:
    """The answer's shape: `text`, `json_object` or `json_schema`, and the schema when there is one."""
    response_format = body.get("response_format") or {"type": "text"}
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind not in FORMATS:
        quoted = "'text', 'json_object', and 'json_schema'"
        raise _invalid("response_format.type", f"Invalid value: '{kind}'. Supported values are: {quoted}.")
    if kind == "json_schema" and not chat.schemas:
        raise _invalid(
            "response_format", f"Invalid parameter: 'response_format' of type 'json_schema' is not supported "
            f"with this model ({model}) (u: wording).", None,
        )  # fmt: skip
    if kind == "json_object" and not any("json" in t.lower() for t in texts):
        raise _invalid(
            "messages", "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
            "'json_object'.", None,
        )  # fmt: skip
    if kind != "json_schema":
        return kind, None
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        raise _missing("response_format.json_schema")
    name = spec.get("name")
    if name is None:
        raise _missing("response_format.json_schema.name")
    if not isinstance(name, str) or not SCHEMA_NAME.match(name):
        raise _invalid(
            "response_format.json_schema.name", "Invalid 'response_format.json_schema.name': string does not "
            f"match pattern. Expected a string that matches the pattern '{SCHEMA_NAME.pattern}'.",
        )  # fmt: skip
    schema = spec.get("schema")
    if spec.get("strict") and (problem := strict_problem(schema)):
        raise _invalid("response_format", f"Invalid schema for response_format '{name}': {problem}", None)
    return kind, schema if isinstance(schema, dict) else None


def check_ask(body: dict[str, Any]) -> Ask:
    model, spec = check_model(body)
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise _invalid(unknown[0], f"Unrecognized request argument supplied: {unknown[0]}", None)
    if body.get("stream"):
        raise _invalid("stream", "Streaming is not supported by the simulator.", "unsupported_value")
    texts, count, image_tokens, links = check_messages(body.get("messages"))
    kind, schema = check_format(body, texts, model, spec)
    if spec.reasoning and body.get("max_tokens") is not None:
        raise _invalid(
            "max_tokens", "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.", "unsupported_parameter",
        )  # fmt: skip
    param = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    limit = _integer(body, param, 1)
    if limit is not None and limit > spec.max_output:
        raise _invalid(
            param, f"max_tokens is too large: {limit}. This model supports at most {spec.max_output} "
            f"completion tokens, whereas you provided {limit}.",
        )  # fmt: skip
    temperature = body.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
            raise _invalid(
                "temperature", f"Invalid 'temperature': expected a number from 0 to 2, got {temperature}."
            )
        if not spec.sampling and temperature != 1:
            raise _invalid(
                "temperature", f"Unsupported value: 'temperature' does not support {temperature} with this "
                "model. Only the default (1) value is supported.", "unsupported_value",
            )  # fmt: skip
    _integer(body, "seed", -(2**63))
    n = _integer(body, "n", 1) or 1
    return Ask(
        model=model, spec=spec, texts=texts, images=count, image_tokens=image_tokens, links=links, format=kind,
        schema=schema, max_tokens=limit or spec.max_output, n=n,
    )  # fmt: skip


async def fetch_images(links: list[str]) -> None:
    """Download the links on this machine as OpenAI would; a link elsewhere is taken on trust offline."""
    for link in links:
        try:
            data = await media.fetch_local(link)
        except media.FetchFailed:
            data = b""
        if data is not None and media.image_size(data) is None:
            raise images.ApiError(400, f"Error while downloading {link}.", code="invalid_image_url")


@dataclass
class Reply:
    """One choice of the answer, with the completion tokens it spent (reasoning included)."""

    choice: dict[str, Any]
    completion: int
    reasoning: int = 0


def reply(ask: Ask, body: dict[str, Any], index: int, fault: Fault | None, inject: str | None) -> Reply:
    """One answer, shaped by the request and the drawn fault."""
    if fault is Fault.refusal:
        message = {"role": "assistant", "content": None, "refusal": REFUSAL, "annotations": []}
        return Reply(_choice(index, message, "stop"), answers.tokens(REFUSAL))
    writer = answers.Writer(ask.texts, answers.seed_of(body) + index, inject)
    if ask.format == "text":
        content = writer.text()
    else:
        schema = ask.schema or answers.schema_in(ask.texts)
        value = writer.instance(schema) if schema else writer.json_object()
        content = json.dumps(value, ensure_ascii=False)
        if fault is Fault.invalid_json:
            content = answers.cut(content)
        elif fault is Fault.schema_violation:
            content = json.dumps(answers.violate(value, schema or {}, writer), ensure_ascii=False)
    needed = answers.tokens(content)
    reasoning = 64 + needed // 2 if ask.spec.reasoning else 0
    limit = ask.max_tokens if fault is not Fault.truncated else min(ask.max_tokens, reasoning + needed // 2)
    finish = "stop"
    if reasoning + needed > limit:
        reasoning = min(reasoning, limit)
        content, finish, needed = content[: (limit - reasoning) * 4], "length", limit - reasoning
    message = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    return Reply(_choice(index, message, finish), needed + reasoning, reasoning)


def _choice(index: int, message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish}


def router(sim: Simulator) -> APIRouter:
    api = APIRouter(route_class=images.OpenAIRoute, dependencies=[Depends(images.authorised)])

    @api.post("/completions")
    async def completions(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise images.ApiError(400, "We could not parse the JSON body of your request.")
        ask = check_ask(body)
        await fetch_images(ask.links)
        fault = sim.draw(*answers.LLM_FAULTS)
        replies = [reply(ask, body, i, fault, sim.config.llm_inject) for i in range(ask.n)]
        completion = sum(r.completion for r in replies)
        summary = {"model": ask.model, "format": ask.format}
        job = start_job(
            sim, VENDOR, 0.3 + completion / 80, summary, faults=(), job_id=request.state.request_id
        )
        await asyncio.sleep(job.latency)
        prompt = answers.prompt_tokens(ask.texts, 0) + ask.image_tokens
        fingerprint = hashlib.sha256(ask.model.encode()).hexdigest()[:10]
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex[:29]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": ask.model,
            "choices": [r.choice for r in replies],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": sum(r.reasoning for r in replies), "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": f"fp_{fingerprint}",
        })  # fmt: skip

    return api
