"""Reading a CSV upload as a stream: text lines decoded one at a time (so an error names its line), and
the problems found, kept in line order without keeping a million of them."""
from __future__ import annotations

import codecs
import heapq
import re
from typing import Iterable, Iterator

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


class NotReadable(Exception):
    """The stream cannot be read on as CSV text from this line on; `message` says so, naming the line."""

    def __init__(self, line: int, message: str):
        self.line, self.message = line, message
        super().__init__(message)


def text_lines(stream: Iterable[bytes] | Iterable[str]) -> Iterator[str]:
    """The stream's lines as text, one at a time. Bytes are decoded as UTF-8 line by line (a BOM
    dropped), so a decoding error names its line; a lone CR ends a line too, as a text file read
    with newline="" does."""
    number = 0
    for chunk in stream:
        if isinstance(chunk, str):
            number += 1
            yield chunk.removeprefix("\ufeff") if number == 1 else chunk
            continue
        for raw in _CR_LINE.split(chunk) if b"\r" in chunk[:-2] else (chunk,):
            if not raw:
                continue
            number += 1
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise NotReadable(number, f"line {number}: the file is not UTF-8 text ({error.reason} at byte "
                                           f"{error.start + 1} of the line); save it as UTF-8 CSV") from None


_CR_LINE = re.compile(rb"(?<=\r)(?!\n)")  # after a CR that no LF follows
