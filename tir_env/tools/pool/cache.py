"""The pool's result cache: an LRU map bounded in bytes of stored tensors."""

from __future__ import annotations

from collections import OrderedDict

import torch

from tir_env.types import ToolCall


class ResultCache:
    """LRU map ``(image digest, resolved ToolCall) -> result tensor``, bounded in bytes.

    Not thread-safe on its own: the pool calls it under its lock. Stored tensors are never
    handed out; callers get clones, so they cannot corrupt the cache.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[tuple[str, ToolCall], torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple[str, ToolCall]) -> torch.Tensor | None:
        """The stored tensor (not a copy) or ``None``; marks it recently used."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: tuple[str, ToolCall], value: torch.Tensor) -> None:
        """Store ``value`` (the caller passes a private copy), evicting least recently used."""
        size = value.numel() * value.element_size()
        if size > self.max_bytes or key in self._items:
            return
        self._items[key] = value
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()
