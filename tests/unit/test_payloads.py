"""Activity payloads leave out fields at their default; what clients read keeps them all."""

from __future__ import annotations

import json

from temporalio.contrib.pydantic import pydantic_data_converter

from interface import (
    Message,
    ModelCallInput,
    ModelCallOutput,
    SeqMessage,
    ToolCall,
    ToolCallInput,
    ToolCallOutput,
    TurnResult,
)

CONVERTER = pydantic_data_converter.payload_converter


def encoded(value: object) -> dict:
    [payload] = CONVERTER.to_payloads([value])
    return json.loads(payload.data)


def decoded(value: object) -> object:
    return CONVERTER.from_payloads(CONVERTER.to_payloads([value]), [type(value)])[0]


def test_a_model_call_input_leaves_out_its_defaults_and_its_messages_defaults() -> None:
    request = ModelCallInput(
        conversation_id="c-1",
        chain_id="run-1",
        agent="claims-assistant",
        turn=1,
        step=2,
        new_messages=[
            SeqMessage(seq=2, message=Message(role="tool", content="{}", tool_call_id="t1")),
            SeqMessage(seq=3, message=Message(role="user", content="hi", message_id="m-2")),
        ],
        output_seq=4,
    )
    data = encoded(request)
    assert "select_speaker" not in data and "tools_enabled" not in data
    assert data["new_messages"] == [
        {"seq": 2, "message": {"role": "tool", "content": "{}", "tool_call_id": "t1"}},
        {"seq": 3, "message": {"role": "user", "content": "hi", "message_id": "m-2"}},
    ]
    assert decoded(request) == request
    # a value that is not the default is kept
    assert encoded(request.model_copy(update={"tools_enabled": False}))["tools_enabled"] is False


def test_a_model_call_output_keeps_the_nulls_of_a_structured_output() -> None:
    answer = ModelCallOutput(
        message=Message(
            role="assistant", tool_calls=[ToolCall(id="c1", name="lookup")], source="bot"
        ),
        output={"verdict": None, "flags": []},
    )
    data = encoded(answer)
    assert data["message"] == {
        "role": "assistant",
        "tool_calls": [{"id": "c1", "name": "lookup", "arguments": "{}"}],
        "source": "bot",
    }
    assert data["output"] == {"verdict": None, "flags": []}, "the user's data, unchanged"
    assert {"duplicate_message_id", "replayed", "terminate", "chain_id"}.isdisjoint(data)
    assert decoded(answer) == answer


def test_tool_payloads_round_trip() -> None:
    call = ToolCallInput(
        conversation_id="c",
        chain_id="r",
        agent="a",
        turn=1,
        key="c/r/t1/s1/c0",
        name="lookup",
        arguments="{}",
        call_ids=["x"],
    )
    result = ToolCallOutput(status="ok", content="")
    assert encoded(result) == {"status": "ok", "content": ""}
    assert decoded(call) == call and decoded(result) == result


def test_what_clients_read_keeps_every_field() -> None:
    """`ask`'s result is read by clients in other languages: its nulls stay."""
    data = encoded(TurnResult(message_id="m", turn=1, status="completed", reply="ok"))
    assert data["error"] is None and data["output"] is None and "speaker" in data
