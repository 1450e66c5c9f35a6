"""Anthropic Messages as the `anthropic` 2.17 SDK calls it: `POST /v1/messages` (base URL `<sim>/anthropic`).

Sources: the installed SDK's types and helpers (message_create_params, message, stop_reason, usage,
refusal_stop_details, model_param, output_config_param, json_output_format_param, tool_choice_*_param,
`messages.parse` and lib/_parse/_transform.py, _error_classes.py, _constants.py) and Anthropic's public error
and structured-output documentation as remembered (no vendor file in ../shared/providers yet).

What is simulated: the key in `x-api-key` or in `Authorization: Bearer` (where the 2.17 SDK sends an
`api_key`), the `anthropic-version` header (the SDK sends `2026-10-21`; any YYYY-MM-DD is taken); `model` (the SDK's literal models plus the 4.x ones still served), `max_tokens`
(required, at most the model's output limit), `system`, `messages` (content a string or `text` / `image` /
`tool_use` / `tool_result` blocks; an image `source` is `base64` with its `media_type`, decoded and checked,
or `url`), `temperature` (0–1), `tools` with `tool_choice` (`{"type": "tool", "name"}` or `any` answers with
one `tool_use` block whose `input` follows the tool's `input_schema`, `stop_reason: "tool_use"`; `auto`/`none`
answer in text) and structured outputs: the 2.17 SDK has no `output_format` body field; `messages.parse(
output_format=Model)` sends `output_config: {"format": {"type": "json_schema", "schema"}}` with the schema run
through its `transform_schema` (every object `additionalProperties: false`; numeric, length and item bounds
moved into the description as `{minimum: 1, maximum: 10}`), and reads a text block of JSON. This simulator
refuses an `output_config` schema that keeps those bounds or an object without `additionalProperties: false`,
as Anthropic's structured-output limits say, and its model follows the bounds written in descriptions. The
answer is built by simulator/answers.py (valid by construction, the same for the same request, words of the
messages and SimConfig.llm_inject's word). Usage: an input token per four characters of system, messages and
tool definitions plus 765 per image; output tokens the same of the answer; over `max_tokens` it is cut with
`stop_reason: "max_tokens"`.

Errors: `{"type": "error", "error": {"type", "message"}, "request_id"}` with a `request-id` header:
401 authentication_error, 400 invalid_request_error, 404 not_found_error (unknown model), 429
rate_limit_error with `retry-after`, 500 api_error, 529 overloaded_error (the frame's 5xx fault), 504
timeout_error (its timeout fault).

Faults (drawn per request): invalid_json → a JSON text answer cut mid-object (a tool call's `input` is parsed
by the API and cannot be invalid JSON, so there it breaks the schema instead); schema_violation → JSON or tool
input missing a required field (or with a forbidden one, or of the wrong type); refusal → `stop_reason:
"refusal"`, no content, `stop_details: {"type": "refusal"}`; truncated → cut half-way with `stop_reason:
"max_tokens"` (a cut tool call keeps its leading fields). The JSON faults leave a plain-text answer alone.

Unverified (u): the wording of every error message, the output limits of the models and the dated ids the
aliases answer with, what content a refusal carries, the latency (0.5 s + 60 tokens/s), the 504 error type,
the tool-definition token overhead (counted as the JSON's characters only). Not simulated: streaming (refused),
thinking, prompt caching (cache counts are 0), server tools, documents' contents, the Beta endpoints.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from simulator import answers, media
from simulator.core import Fault, Simulator
from simulator.jobs import start_job

VENDOR = "anthropic"
PREFIX = "/anthropic"
KEY_PATTERN = re.compile(r"^sk-ant-api03-[A-Za-z0-9_-]{20,}$")
SIMULATOR_KEY = "sk-ant-api03-" + "cutroomSimulatorKey0" * 4
VERSION_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
#: Schema keywords structured outputs refuse (the SDK moves them into descriptions); minItems only 0 or 1.
UNSUPPORTED = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
               "maxLength", "maxItems")  # fmt: skip
#: Bounds the model reads back from a description's `{key: value, …}` tail, as the SDK writes them there.
HINTED = (*UNSUPPORTED, "minItems")
HINT = re.compile(
    rf"\b({'|'.join(HINTED)}): (-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\b"
)  # 1e-24 as Python writes it
STATUS_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 504: "timeout_error",
    529: "overloaded_error",
}  # fmt: skip


@dataclass(frozen=True)
class Model:
    """A Claude model: the dated id an alias answers with, and its output limit."""

    snapshot: str
    max_output: int = 64_000


MODELS: dict[str, Model] = {
    "claude-sonnet-4-5": Model("claude-sonnet-4-5-20250929"),
    "claude-sonnet-4-5-20250929": Model("claude-sonnet-4-5-20250929"),
    "claude-haiku-4-5": Model("claude-haiku-4-5-20251001"),
    "claude-haiku-4-5-20251001": Model("claude-haiku-4-5-20251001"),
    "claude-opus-4-1": Model("claude-opus-4-1-20250805", 32_000),
    "claude-opus-4-1-20250805": Model("claude-opus-4-1-20250805", 32_000),
    "claude-opus-4-5": Model("claude-opus-4-5-20251101"),
    "claude-opus-4-5-20251101": Model("claude-opus-4-5-20251101"),
    **{name: Model(name, 128_000) for name in ("claude-opus-4-6", "claude-opus-4-7", "claude-opus-4-8")},
    **{
        name: Model(name)
        for name in (
            "claude-sonnet-4-6", "claude-mythos-preview", "claude-opus-5", "claude-mythos-5", "claude-fable-5",
            "claude-sonnet-5", "claude-mythos-5-1", "claude-opus-5-5", "claude-fable-5-1", "claude-sonnet-5-5",
            "claude-haiku-5-5", "claude-mythos-5-2", "claude-fable-5-2",
        )
    },
}  # fmt: skip


class ApiError(Exception):
    """An answer in Anthropic's error shape."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message

    def response(self, request_id: str, headers: dict[str, str] | None = None) -> Response:
        body = {
            "type": "error",
            "error": {"type": STATUS_TYPES.get(self.status, "api_error"), "message": self.message},
            "request_id": request_id,
        }
        return JSONResponse(
            body, status_code=self.status, headers={"request-id": request_id, **(headers or {})}
        )


def _request_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "req_011C" + "".join(secrets.choice(alphabet) for _ in range(20))


def _id(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return f"{prefix}_01" + "".join(secrets.choice(alphabet) for _ in range(22))


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """The frame's injected faults in Anthropic's shape: its 5xx is Anthropic's 529 overload."""
    if status == 429:
        wait = retry_after or 1.0
        headers = {"retry-after": f"{max(1, round(wait))}"}
        text = "This request would exceed your organization's rate limit. Please try again later."
        return ApiError(429, text).response(_request_id(), headers)
    if status == 503:
        return ApiError(529, "Overloaded").response(_request_id())
    if status == 504:
        return ApiError(504, "Request timed out").response(_request_id())
    return ApiError(status, message).response(_request_id())


class AnthropicRoute(APIRoute):
    """Gives every answer a request id and turns an ApiError raised by a route or its dependency into
    Anthropic's error body."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            request.state.request_id = _request_id()
            try:
                response = await handler(request)
            except ApiError as exc:
                return exc.response(request.state.request_id)
            response.headers["request-id"] = request.state.request_id
            return response

        return guarded


def authorised(request: Request) -> None:
    """The key from `x-api-key`, or from `Authorization: Bearer`, where the 2.17 SDK puts an `api_key`."""
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    key = request.headers.get("x-api-key", "").strip() or (
        bearer.strip() if scheme.lower() == "bearer" else ""
    )
    if not key:
        raise ApiError(401, "x-api-key header is required")
    if not KEY_PATTERN.match(key):
        raise ApiError(401, "invalid x-api-key")
    version = request.headers.get("anthropic-version")
    if version is None:
        raise ApiError(400, "anthropic-version: header is required")
    if not VERSION_PATTERN.match(version):
        raise ApiError(400, f"anthropic-version: invalid version '{version}'")


@dataclass
class Ask:
    """A validated request: what the model reads and what shape it answers in."""

    model: str
    spec: Model
    max_tokens: int
    texts: list[str] = field(default_factory=list)
    images: int = 0
    links: list[str] = field(default_factory=list)
    #: Tool definitions are read and billed, but their JSON is no vocabulary for the answer.
    tool_tokens: int = 0
    tool: dict[str, Any] | None = None
    schema: dict[str, Any] | None = None


def check_image(source: Any, where: str) -> str | None:
    """An image block's source: None when its base64 data decodes as the declared type, the link for a url."""
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ApiError(400, f"{where}.source.url.url: Input should be a valid URL")
        return url
    if kind != "base64":
        raise ApiError(400, f"{where}.source: Input tag '{kind}' found using 'type' does not match any of the "
                       "expected tags: 'base64', 'url', 'file'")  # fmt: skip
    mime = source.get("media_type")
    if mime not in IMAGE_TYPES:
        raise ApiError(400, f"{where}.source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                       "'image/gif' or 'image/webp'")  # fmt: skip
    decoded = media.data_uri(f"data:{mime};base64,{source.get('data', '')}")
    if decoded is None or media.image_size(decoded[1]) is None:
        raise ApiError(400, f"{where}.source.base64.data: Could not process image")
    return None


def check_messages(messages: Any, ask: Ask) -> None:
    if messages is None:
        raise ApiError(400, "messages: Field required")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages: at least one message is required")
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise ApiError(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise ApiError(400, f"messages.{i}.content: Input should be a valid list")
        for j, block in enumerate(blocks):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                ask.texts.append(str(block.get("text", "")))
            elif kind == "image":
                link = check_image(block.get("source"), f"messages.{i}.content.{j}.image")
                ask.links += [link] if link else []
                ask.images += 1
            elif kind in ("tool_use", "tool_result", "document"):
                ask.texts.append(json.dumps(block.get("input") or block.get("content") or ""))
            else:
                raise ApiError(400, f"messages.{i}.content.{j}: Input tag '{kind}' found using 'type' does not "
                               "match any of the expected tags")  # fmt: skip


def with_hints(schema: Any) -> Any:
    """`schema` with the bounds the SDK wrote into descriptions put back as keywords: the model reads them."""
    if isinstance(schema, list):
        return [with_hints(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: with_hints(value) for key, value in schema.items()}
    description = out.get("description")
    for key, value in HINT.findall(description) if isinstance(description, str) else []:
        out.setdefault(key, int(value) if value.lstrip("-").isdigit() else float(value))
    return out


def structured_problem(schema: Any, where: str) -> str | None:
    """Why Anthropic's structured outputs refuse `schema`, or None."""
    if isinstance(schema, list):
        return next((p for i, s in enumerate(schema) if (p := structured_problem(s, f"{where}.{i}"))), None)
    if not isinstance(schema, dict):
        return None
    if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
        return f"{where}: For 'object' type, 'additionalProperties' must be explicitly set to false"
    for keyword in UNSUPPORTED:
        if keyword in schema:
            return f"{where}: '{keyword}' is not supported"
    if schema.get("minItems", 0) > 1:
        return f"{where}: 'minItems' values other than 0 or 1 are not supported"
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            for name, sub in value.items():
                if problem := structured_problem(sub, f"{where}.{key}.{name}"):
                    return problem
        elif key in ("items", "anyOf", "allOf", "oneOf", "prefixItems") and (
            problem := structured_problem(value, f"{where}.{key}")
        ):
            return problem
    return None


def check_tools(body: dict[str, Any], ask: Ask) -> None:
    """The tool the answer must call, when `tool_choice` forces one."""
    tools, choice = body.get("tools"), body.get("tool_choice")
    if choice is not None and not tools:
        raise ApiError(400, "tool_choice may only be specified while providing tools")
    by_name: dict[str, dict[str, Any]] = {}
    for i, tool in enumerate(tools or []):
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise ApiError(400, f"tools.{i}.custom.name: String should match pattern '{TOOL_NAME.pattern}'")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise ApiError(400, f"tools.{i}.custom.input_schema.type: Input should be 'object'")
        if tool.get("strict") and (problem := structured_problem(schema, f"tools.{i}.custom.input_schema")):
            raise ApiError(400, problem)
        by_name[name] = tool
        ask.tool_tokens += answers.tokens(json.dumps(tool))
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "tool":
        if choice.get("name") not in by_name:
            raise ApiError(
                400, f"tool_choice.name: Tool '{choice.get('name')}' not found in the provided tools"
            )
        ask.tool = by_name[choice["name"]]
    elif kind == "any":
        ask.tool = next(iter(by_name.values()))
    elif kind not in (None, "auto", "none"):
        raise ApiError(400, f"tool_choice: Input tag '{kind}' found using 'type' does not match any of the "
                       "expected tags: 'auto', 'any', 'tool', 'none'")  # fmt: skip


def check_ask(body: dict[str, Any]) -> Ask:
    name = body.get("model")
    if name is None:
        raise ApiError(400, "model: Field required")
    if name not in MODELS:
        raise ApiError(404, f"model: {name}")
    spec = MODELS[name]
    limit = body.get("max_tokens")
    if limit is None:
        raise ApiError(400, "max_tokens: Field required")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ApiError(400, "max_tokens: Input should be greater than or equal to 1")
    if limit > spec.max_output:
        raise ApiError(400, f"max_tokens: {limit} > {spec.max_output}, which is the maximum allowed number of "
                       f"output tokens for {spec.snapshot}")  # fmt: skip
    if body.get("stream"):
        raise ApiError(400, "stream: streaming is not supported by the simulator")
    temperature = body.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 1):
        raise ApiError(400, "temperature: Input should be less than or equal to 1")
    ask = Ask(model=name, spec=spec, max_tokens=limit)
    system = body.get("system")
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system or []
    ask.texts += [str(b.get("text", "")) for b in blocks if isinstance(b, dict)]
    check_messages(body.get("messages"), ask)
    check_tools(body, ask)
    output_format = (body.get("output_config") or {}).get("format")
    if output_format is not None:
        if output_format.get("type") != "json_schema" or not isinstance(output_format.get("schema"), dict):
            raise ApiError(400, "output_config.format.schema: Field required")
        if problem := structured_problem(output_format["schema"], "output_config.format.schema"):
            raise ApiError(400, problem)
        ask.schema = output_format["schema"]
    return ask


async def fetch_images(links: list[str]) -> None:
    """Download the links on this machine as Anthropic would; a link elsewhere is taken on trust offline."""
    for link in links:
        try:
            data = await media.fetch_local(link)
        except media.FetchFailed:
            data = b""
        if data is not None and media.image_size(data) is None:
            raise ApiError(400, f"Unable to download the file from the URL: {link}")


@dataclass
class Reply:
    """The answer's content blocks, why it stopped and its output tokens."""

    content: list[dict[str, Any]]
    stop_reason: str
    output_tokens: int


def reply(ask: Ask, body: dict[str, Any], fault: Fault | None, inject: str | None) -> Reply:
    if fault is Fault.refusal:
        return Reply([], "refusal", 1)
    writer = answers.Writer(ask.texts, answers.seed_of(body), inject)
    if ask.tool is not None:
        schema = with_hints(ask.tool["input_schema"])
        value = writer.instance(schema)
        if fault in (Fault.invalid_json, Fault.schema_violation):
            value = answers.violate(value, schema, writer)
            value = value if isinstance(value, dict) else {}
        text = json.dumps(value, ensure_ascii=False)
        limit = ask.max_tokens if fault is not Fault.truncated else answers.tokens(text) // 2
        stop = "tool_use"
        if answers.tokens(text) > limit:
            value, stop = answers.prefix_object(value, limit * 4), "max_tokens"
        block = {"type": "tool_use", "id": _id("toolu"), "name": ask.tool["name"], "input": value}
        return Reply([block], stop, min(answers.tokens(text), limit))
    if ask.schema is not None:
        schema = with_hints(ask.schema)
        value = writer.instance(schema)
        text = json.dumps(value, ensure_ascii=False)
        if fault is Fault.invalid_json:
            text = answers.cut(text)
        elif fault is Fault.schema_violation:
            text = json.dumps(answers.violate(value, schema, writer), ensure_ascii=False)
    else:
        text = writer.text()
    limit = ask.max_tokens if fault is not Fault.truncated else answers.tokens(text) // 2
    stop = "end_turn"
    if answers.tokens(text) > limit:
        text, stop = text[: limit * 4], "max_tokens"
    return Reply([{"type": "text", "text": text}], stop, answers.tokens(text))


def router(sim: Simulator) -> APIRouter:
    api = APIRouter(route_class=AnthropicRoute, dependencies=[Depends(authorised)])

    @api.post("/v1/messages")
    async def messages(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(400, "There was an issue with your request body: it is not valid JSON")
        ask = check_ask(body)
        await fetch_images(ask.links)
        fault = sim.draw(*answers.LLM_FAULTS)
        answer = reply(ask, body, fault, sim.config.llm_inject)
        summary = {"model": ask.model, "tool": ask.tool["name"] if ask.tool else None}
        job = start_job(sim, VENDOR, 0.5 + answer.output_tokens / 60, summary, faults=(),
                        job_id=request.state.request_id)  # fmt: skip
        await asyncio.sleep(job.latency)
        message = {
            "id": _id("msg"),
            "type": "message",
            "role": "assistant",
            "model": ask.spec.snapshot,
            "content": answer.content,
            "stop_reason": answer.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": answers.prompt_tokens(ask.texts, ask.images) + ask.tool_tokens,
                "output_tokens": answer.output_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "service_tier": "standard",
            },
        }
        if answer.stop_reason == "refusal":
            message["stop_details"] = {"type": "refusal", "category": None, "explanation": None}
        return JSONResponse(message)

    return api
