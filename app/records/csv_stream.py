"""Reading a CSV upload as a stream: text lines decoded one at a time (app/spreadsheets.py: so an error names
its line), and the problems found, kept in line order without keeping a million of them."""
from __future__ import annotations

import heapq
from typing import Iterable, Iterator

from app.spreadsheets import decoded_lines

MAX_MESSAGES = 100  # problems listed; the rest are counted


class Problems:
    """The first `limit` problems in line order, and how many there were in all (a file may have
    a million bad rows: keeping every message is what must not happen)."""

    def __init__(self, limit: int = MAX_MESSAGES):
        self.limit, self.count, self._heap, self._order = limit, 0, [], 0

    def add(self, line: int, message: str) -> None:
        self.count += 1
        self._order += 1
        item = (-line, -self._order, message)  # the heap's root is the latest problem kept
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, item)
        elif item > self._heap[0]:
            heapq.heapreplace(self._heap, item)

    def __bool__(self) -> bool:
        return self.count > 0

    def messages(self) -> list[str]:
        kept = [message for _line, _order, message in sorted(self._heap, reverse=True)]
        if self.count > len(kept):
            kept.append(f"… and {self.count - len(kept):,} more problem(s) after these")
        return kept


def text_lines(stream: Iterable[bytes] | Iterable[str]) -> Iterator[str]:
    """The stream's lines as text, one at a time: UTF-8 (with or without a BOM) or Windows-1252, decoded by
    the one reader of uploaded spreadsheets (app/spreadsheets.py), so a decoding error names its line."""
    return decoded_lines(stream)
