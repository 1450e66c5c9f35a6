"""simulator/openai_chat.py and simulator/anthropic.py driven by the official `openai` and `anthropic` SDKs over
loopback HTTP, and simulator/answers.py's schema answers checked against pydantic itself."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal
from uuid import UUID

import anthropic
import httpx
import openai
import pytest
from anthropic.lib._parse._transform import transform_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib._pydantic import to_strict_json_schema
from PIL import Image
from pydantic import BaseModel, Field, ValidationError, create_model

from simulator import anthropic as sim_anthropic
from simulator import openai as sim_openai
from simulator.answers import Writer, vocabulary

FAST = {"latency_scale": 0.001, "latency_jitter": 0.0}
BRIEF = (
    "Launch the Acme trail bottle for summer hikers on the Cornish coast: sunrise walks, salt air, bold colour. "
    "Avoid: cheap, discount."
)
SYSTEM = "You plan marketing campaigns. Answer with the plan."


class Shot(BaseModel):
    prompt: str = Field(min_length=20, max_length=300)
    seconds: float = Field(ge=2, le=8)
    aspect: Literal["16:9", "9:16", "1:1"]


class Story(BaseModel):
    title: str = Field(max_length=40)
    voiceover: str | None = None
    shots: list[Shot] = Field(min_length=1, max_length=4)


class Plan(BaseModel):
    headline: str
    stories: list[Story] = Field(min_length=2)


@pytest.fixture
def sim(simulator: Any) -> Iterator[Any]:
    simulator.reset(**FAST)
    yield simulator
    simulator.reset()


def _openai(sim: Any, key: str = sim_openai.SIMULATOR_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{sim.url}/openai/v1", api_key=key, max_retries=0)


def _anthropic(sim: Any, key: str = sim_anthropic.SIMULATOR_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{sim.url}/anthropic", api_key=key, max_retries=0)


def _messages(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": [{"type": "text", "text": BRIEF}, *parts]}]  # fmt: skip


def _plan_tool() -> dict[str, Any]:
    return {"name": "plan", "description": "The campaign plan", "input_schema": Plan.model_json_schema()}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [s for item in items for s in _strings(item)]


def _free_text(plan: Plan) -> list[str]:
    """Every string of a plan but the enum ones."""
    return [s for s in _strings(plan.model_dump()) if s not in ("16:9", "9:16", "1:1")]


def _png_b64() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_openai_parse_answers_a_valid_plan_in_the_briefs_words(sim: Any) -> None:
    client = _openai(sim)
    completion = client.chat.completions.parse(
        model="gpt-4.1", messages=_messages(), response_format=Plan, temperature=0.7, seed=3
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and isinstance(choice.message.parsed, Plan)
    text = " ".join(_free_text(choice.message.parsed)).lower()
    assert {"hikers", "coast", "bottle", "acme"} & set(text.split())
    assert "cheap" not in text and "discount" not in text  # the brief said to avoid them
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens == -(-len(SYSTEM) // 4) + -(-len(BRIEF) // 4)
    assert usage.completion_tokens == -(-len(choice.message.content or "") // 4)
    again = client.chat.completions.parse(
        model="gpt-4.1", messages=_messages(), response_format=Plan, temperature=0.7, seed=3
    )
    assert again.choices[0].message.content == choice.message.content
    calls = [r for r in sim.requests() if r["path"] == "/openai/v1/chat/completions"]
    assert len(calls) == 2 and calls[0]["vendor"] == "openai-chat" and calls[0]["status"] == 200


def test_anthropic_tool_call_follows_the_input_schema(sim: Any) -> None:
    message = _anthropic(sim).messages.create(
        model="claude-sonnet-4-5", max_tokens=4000, system=SYSTEM,
        messages=[{"role": "user", "content": BRIEF}], tools=[_plan_tool()],
        tool_choice={"type": "tool", "name": "plan"},
    )  # fmt: skip
    assert message.stop_reason == "tool_use" and message.model == "claude-sonnet-4-5-20250929"
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "plan" and block.id.startswith("toolu_")
    plan = Plan.model_validate(block.input)
    assert "cheap" not in " ".join(_free_text(plan)).lower()
    assert message.usage.input_tokens > (len(SYSTEM) + len(BRIEF)) // 4 and message.usage.output_tokens > 0
    assert [r["vendor"] for r in sim.requests()] == ["anthropic"]


def test_anthropic_parse_with_output_format_reads_the_bounds_from_descriptions(sim: Any) -> None:
    """The 2.17 SDK sends `output_config.format` with bounds moved into descriptions; the answer still parses."""
    message = _anthropic(sim).messages.parse(
        model="claude-haiku-4-5",
        max_tokens=4000,
        messages=[{"role": "user", "content": BRIEF}],
        output_format=Plan,
    )
    assert message.stop_reason == "end_turn"
    assert isinstance(message.parsed_output, Plan)
    (call,) = sim.requests()
    assert call["body"]["output_config"]["format"]["type"] == "json_schema"


def test_anthropic_refuses_schemas_structured_outputs_cannot_follow(sim: Any) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]}
    for bad, word in (
        (schema, "additionalProperties"),
        ({**schema, "additionalProperties": False}, "minimum"),
    ):
        with pytest.raises(anthropic.BadRequestError) as caught:
            _anthropic(sim).messages.create(
                model="claude-opus-4-1", max_tokens=100, messages=[{"role": "user", "content": "n"}],
                output_config={"format": {"type": "json_schema", "schema": bad}},
            )  # fmt: skip
        assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        assert word in caught.value.body["error"]["message"]  # type: ignore[index]


def test_images_by_data_uri_and_by_link_are_read(sim: Any) -> None:
    png = _png_b64()
    parts = [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image_url", "image_url": {"url": "https://cdn.example.com/keyframe.jpg", "detail": "low"}},
    ]
    completion = _openai(sim).chat.completions.create(model="gpt-4o", messages=_messages(*parts))  # type: ignore[arg-type]
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == -(-len(SYSTEM) // 4) + -(-len(BRIEF) // 4) + 765 + 85
    blocks = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        {"type": "image", "source": {"type": "url", "url": "https://cdn.example.com/keyframe.jpg"}},
        {"type": "text", "text": "Score this keyframe."},
    ]
    message = _anthropic(sim).messages.create(
        model="claude-haiku-4-5", max_tokens=500, messages=[{"role": "user", "content": blocks}]
    )
    assert message.content[0].type == "text" and message.usage.input_tokens >= 2 * 765


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("data:image/png;base64,bm90IGFuIGltYWdl", "invalid_image_format"),  # "not an image"
        ("data:text/plain;base64,aGVsbG8=", "invalid_image_format"),
        ("ftp://example.com/a.png", "invalid_image_url"),
    ],
)
def test_openai_refuses_images_it_cannot_read(sim: Any, url: str, code: str) -> None:
    part = {"type": "image_url", "image_url": {"url": url}}
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(sim).chat.completions.create(model="gpt-4o-mini", messages=_messages(part))  # type: ignore[arg-type]
    assert caught.value.body["code"] == code  # type: ignore[index]
    assert caught.value.body["param"] == "messages[1].content[1].image_url.url"  # type: ignore[index]


def test_anthropic_refuses_an_image_that_does_not_decode(sim: Any) -> None:
    block = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "bm90IGFuIGltYWdl"},
    }
    with pytest.raises(anthropic.BadRequestError) as caught:
        _anthropic(sim).messages.create(
            model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": [block]}]
        )
    assert caught.value.body["error"]["message"].startswith("messages.0.content.0.image.source.base64.data")  # type: ignore[index]


def test_openai_strict_schemas_follow_openais_rules(sim: Any) -> None:
    loose = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"],
    }
    for schema, problem in (
        (loose, "'additionalProperties' is required"),
        ({**loose, "additionalProperties": False}, "Missing 'b'"),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            _openai(sim).chat.completions.create(
                model="gpt-4o", messages=_messages(),
                response_format={"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": schema}},
            )  # fmt: skip
        body: Any = caught.value.body
        assert body["param"] == "response_format" and body["type"] == "invalid_request_error"
        assert problem in body["message"]
    non_strict = _openai(sim).chat.completions.create(
        model="gpt-4o", messages=_messages(),
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": loose}},
    )  # fmt: skip
    assert isinstance(json.loads(non_strict.choices[0].message.content or "")["a"], str)


def test_openai_json_mode_and_model_rules(sim: Any) -> None:
    client = _openai(sim)
    with pytest.raises(openai.BadRequestError, match="must contain the word 'json'"):
        client.chat.completions.create(
            model="gpt-4o", messages=_messages(), response_format={"type": "json_object"}
        )
    answer = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Reply in JSON. " + BRIEF}],
        response_format={"type": "json_object"},
    )  # fmt: skip
    assert isinstance(json.loads(answer.choices[0].message.content or ""), dict)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-5", messages=_messages(), max_tokens=100)
    assert caught.value.body["code"] == "unsupported_parameter"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-5-mini", messages=_messages(), temperature=0.2)
    assert caught.value.body["param"] == "temperature"  # type: ignore[index]
    reasoned = client.chat.completions.create(model="gpt-5", messages=_messages())
    assert reasoned.usage and reasoned.usage.completion_tokens_details
    assert reasoned.usage.completion_tokens_details.reasoning_tokens


def test_answers_over_the_token_limit_are_cut(sim: Any) -> None:
    completion = _openai(sim).chat.completions.create(
        model="gpt-4.1-mini", messages=_messages(), max_completion_tokens=12,
        response_format={"type": "json_schema", "json_schema": {"name": "plan", "schema": Plan.model_json_schema()}},
    )  # fmt: skip
    choice = completion.choices[0]
    assert choice.finish_reason == "length" and len(choice.message.content or "") == 48
    assert completion.usage is not None and completion.usage.completion_tokens == 12
    message = _anthropic(sim).messages.create(
        model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": BRIEF}]
    )
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 10


def test_a_wrong_key_is_refused_in_each_vendors_shape(sim: Any) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        _openai(sim, "not-a-key").chat.completions.create(model="gpt-4o", messages=_messages())
    assert caught.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError) as refused:
        _anthropic(sim, "sk-wrong").messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=_messages()[1:]
        )  # type: ignore[arg-type]
    assert refused.value.body == {
        "type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        "request_id": refused.value.request_id,
    }  # fmt: skip
    unversioned = httpx.post(
        f"{sim.url}/anthropic/v1/messages", headers={"x-api-key": sim_anthropic.SIMULATOR_KEY}, json={}
    )
    assert unversioned.status_code == 400 and "anthropic-version" in unversioned.json()["error"]["message"]


def test_an_unknown_model_is_not_found(sim: Any) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _openai(sim).chat.completions.create(model="gpt-3.9-turbo", messages=_messages())
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing:
        _anthropic(sim).messages.create(
            model="claude-2", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body["error"] == {"type": "not_found_error", "message": "model: claude-2"}  # type: ignore[index]


def _openai_plan(sim: Any) -> Any:
    return _openai(sim).chat.completions.create(
        model="gpt-4o", messages=_messages(),
        response_format={"type": "json_schema", "json_schema": {"name": "Plan", "strict": True,
                                                                "schema": to_strict_json_schema(Plan)}},
    ).choices[0]  # fmt: skip


def _anthropic_plan(sim: Any, tool: bool) -> Any:
    extra: dict[str, Any] = (
        {"tools": [_plan_tool()], "tool_choice": {"type": "tool", "name": "plan"}}
        if tool
        else {"output_config": {"format": {"type": "json_schema", "schema": transform_schema(Plan)}}}
    )
    return _anthropic(sim).messages.create(
        model="claude-sonnet-4-5", max_tokens=4000, messages=[{"role": "user", "content": BRIEF}], **extra
    )


def test_llm_faults_openai(sim: Any) -> None:
    for fault in ("invalid_json", "schema_violation", "refusal", "truncated"):
        sim.configure(fault_rate=1.0, faults=[fault])
        choice = _openai_plan(sim)
        content = choice.message.content
        if fault == "invalid_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(content)
        elif fault == "schema_violation":
            with pytest.raises(ValidationError):
                Plan.model_validate(json.loads(content))
        elif fault == "refusal":
            assert content is None and choice.message.refusal == "I'm sorry, I can't help with that."
        else:
            assert choice.finish_reason == "length"
            with pytest.raises(json.JSONDecodeError):
                json.loads(content)
    with pytest.raises(openai.LengthFinishReasonError):
        _openai(sim).chat.completions.parse(model="gpt-4o", messages=_messages(), response_format=Plan)


@pytest.mark.parametrize("tool", [True, False], ids=["tool", "output_config"])
def test_llm_faults_anthropic(sim: Any, tool: bool) -> None:
    for fault in ("invalid_json", "schema_violation", "refusal", "truncated"):
        sim.configure(fault_rate=1.0, faults=[fault])
        message = _anthropic_plan(sim, tool)
        if fault == "refusal":
            assert message.stop_reason == "refusal" and message.content == []
            assert message.stop_details is not None and message.stop_details.type == "refusal"
            continue
        (block,) = message.content
        if fault == "truncated":
            assert message.stop_reason == "max_tokens"
        if tool:  # the API parses a tool call's input: it is an object, only its fields can be wrong
            assert isinstance(block.input, dict)
            with pytest.raises(ValidationError):
                Plan.model_validate(block.input)
        elif fault == "schema_violation":
            with pytest.raises(ValidationError):
                Plan.model_validate_json(block.text)
        else:
            with pytest.raises(json.JSONDecodeError):
                json.loads(block.text)


def test_transport_faults_come_in_each_vendors_shape(sim: Any) -> None:
    sim.configure(fault_rate=1.0, faults=["429"], retry_after_s=2)
    with pytest.raises(openai.RateLimitError) as limited:
        _openai(sim).chat.completions.create(model="gpt-4o", messages=_messages())
    assert limited.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    assert limited.value.response.headers["retry-after"] == "2"
    with pytest.raises(anthropic.RateLimitError) as throttled:
        _anthropic(sim).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=_messages()[1:])  # type: ignore[arg-type]
    assert throttled.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert throttled.value.response.headers["retry-after"] == "2"
    sim.configure(faults=["5xx"])
    with pytest.raises(openai.InternalServerError) as failed:
        _openai(sim).chat.completions.create(model="gpt-4o", messages=_messages())
    assert failed.value.body["type"] == "server_error"  # type: ignore[index]
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        _anthropic(sim).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=_messages()[1:])  # type: ignore[arg-type]
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    sim.configure(faults=["timeout"], timeout_s=0)
    with pytest.raises(anthropic.GatewayTimeoutError) as stalled:
        _anthropic(sim).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=_messages()[1:])  # type: ignore[arg-type]
    assert stalled.value.body["error"]["type"] == "timeout_error"  # type: ignore[index]


def test_llm_faults_leave_image_vendors_alone(sim: Any) -> None:
    sim.configure(fault_rate=1.0, faults=["invalid_json", "schema_violation", "refusal", "truncated"])
    result = _openai(sim).images.generate(model="gpt-image-1-mini", prompt="a bottle", quality="low")
    assert result.data and result.data[0].b64_json


def test_the_inject_control_puts_a_word_in_every_free_string(sim: Any) -> None:
    sim.configure(llm_inject="cheap")
    choice = (
        _openai(sim)
        .chat.completions.parse(model="gpt-4o", messages=_messages(), response_format=Plan)
        .choices[0]
    )
    assert choice.message.parsed is not None
    assert all("cheap" in s for s in _free_text(choice.message.parsed))
    block = _anthropic_plan(sim, tool=True).content[0]
    assert all("cheap" in s for s in _free_text(Plan.model_validate(block.input)))


# The schema-instance builder, without a server ------------------------------------------------------------

WORDS = ["Acme", "bottle", "hikers", "coast", "sunrise"]


def _leaf() -> st.SearchStrategy[Any]:
    texts = st.builds(
        lambda low, extra: Annotated[str, Field(min_length=low, max_length=low + extra)],
        st.integers(0, 30), st.integers(0, 80),
    )  # fmt: skip
    ints = st.builds(
        lambda low, span, step: Annotated[int, Field(ge=low, lt=low + span * step + 1, multiple_of=step)],
        st.integers(-50, 50), st.integers(1, 20), st.sampled_from([1, 2, 5]),
    )  # fmt: skip
    floats = st.builds(
        lambda low, span: Annotated[float, Field(gt=low, le=low + span)],
        st.floats(-10, 10, allow_nan=False), st.floats(0.5, 100),
    )  # fmt: skip
    literals = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3, unique=True).map(
        lambda names: Literal[tuple(names)]
    )
    return st.one_of(st.sampled_from([str, int, float, bool, UUID]), texts, ints, floats, literals)


def _field_type() -> st.SearchStrategy[Any]:
    def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            inner.map(lambda t: t | None),
            st.builds(
                lambda t, low, extra: Annotated[list[t], Field(min_length=low, max_length=low + extra)],  # type: ignore[valid-type]
                inner,
                st.integers(0, 3),
                st.integers(0, 3),
            ),  # fmt: skip
            inner.map(lambda t: dict[str, t]),  # type: ignore[valid-type]
            st.tuples(inner, inner).map(lambda ts: tuple[ts[0], ts[1]]),  # type: ignore[valid-type]
            st.lists(inner, min_size=1, max_size=3).map(_model),
        )

    return st.recursive(_leaf(), containers, max_leaves=6)


def _model(types: list[Any]) -> type[BaseModel]:
    return create_model("Generated", **{f"field_{i}": (t, ...) for i, t in enumerate(types)})  # type: ignore[call-overload]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_field_type(), min_size=1, max_size=4).map(_model), st.integers(0, 2**32))
def test_schema_answers_validate_against_pydantic_and_both_sdks_schemas(
    model: type[BaseModel], seed: int
) -> None:
    """As pydantic emits the schema, as the openai SDK makes it strict, and as the anthropic SDK moves its bounds
    into descriptions (which the simulated Claude reads back)."""
    for schema in (model.model_json_schema(), to_strict_json_schema(model)):
        model.model_validate(Writer([BRIEF], seed).instance(schema))
    if "prefixItems" not in json.dumps(model.model_json_schema()):  # the anthropic SDK cannot carry tuples
        model.model_validate(
            Writer([BRIEF], seed).instance(sim_anthropic.with_hints(transform_schema(model)))
        )


def test_schema_answers_are_deterministic_and_injected() -> None:
    schema = Plan.model_json_schema()
    assert Writer([BRIEF], 7).instance(schema) == Writer([BRIEF], 7).instance(schema)
    assert Writer([BRIEF], 7).instance(schema) != Writer([BRIEF], 8).instance(schema)
    plan = Plan.model_validate(Writer([BRIEF], 7, inject="cheap").instance(schema))
    assert all("cheap" in s for s in _free_text(plan))


def test_vocabulary_keeps_the_briefs_words_and_drops_those_it_forbids() -> None:
    words = vocabulary([BRIEF, 'Brand: {"avoid": ["loud", "tacky"]}. Never say sale.'])
    assert {"Acme", "Cornish", "hikers", "coast"} <= set(words)
    assert not {"cheap", "discount", "loud", "tacky", "sale", "the", "avoid"} & {w.lower() for w in words}
