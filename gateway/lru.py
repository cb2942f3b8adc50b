"""A small bounded mapping, least recently used out first."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any


class LRU(OrderedDict):
    """Parsed config headers by their exact value, and the like."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            self.move_to_end(key)
            return self[key]
        except KeyError:
            return default

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        if len(self) > self.maxsize:
            self.popitem(last=False)
