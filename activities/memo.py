"""Results remembered per object, for the messages that come back in every window.

The transcript keeps the messages it parsed (activities.transcript), so a message still in
the window is the same object on the next model call: what is derived from it (its tokens,
its framework type) is derived once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")


class ByObject(Generic[_K, _V]):
    """`derive(obj, *extra)` remembered by the object's id and `extra`, for the `size`
    latest objects. An entry holds its object, so the id is not reused while cached; the
    objects must not change once derived from (ours are parsed messages, never mutated)."""

    def __init__(self, derive: Callable[..., _V], size: int = 4096) -> None:
        self._derive = derive
        self._size = size
        self._entries: OrderedDict[tuple[int, Hashable], tuple[_K, _V]] = OrderedDict()

    def __call__(self, obj: _K, *extra: Hashable) -> _V:
        key = (id(obj), extra)
        known = self._entries.get(key)
        if known is not None and known[0] is obj:
            self._entries.move_to_end(key)
            return known[1]
        value = self._derive(obj, *extra)
        self._entries[key] = (obj, value)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value
