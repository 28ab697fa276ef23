"""Walk Temporal's proto messages for the payloads they carry."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.message import Message as ProtoMessage
from temporalio.api.common.v1 import Payload

__all__ = ["payloads_in"]


def payloads_in(message: ProtoMessage) -> Iterator[Payload]:
    """Every Payload inside a proto message, except search attributes (never encoded)."""
    for field, value in message.ListFields():
        if field.message_type is None or field.name == "search_attributes":
            continue
        if isinstance(value, ProtoMessage):
            items = [value]
        elif hasattr(value, "values"):  # a map field
            items = list(value.values())
        else:
            items = list(value)
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, ProtoMessage):
                yield from payloads_in(item)
