"""What a source's reader hands on: one message, as read, and its place in the source."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceMessage:
    """One message of a source. `id` is stable across redeliveries: the stream entry's
    id, or the token a list item got when it was first taken ("<generation>-<n>").
    `fields` is a stream entry's field/value pairs; a list item holds its text in
    `item`, and its wrapped bytes as stored in `raw`."""

    id: str
    fields: dict[str, str] | None = None
    item: str | None = None
    raw: bytes | None = field(default=None, repr=False, compare=False)
    problem: str | None = None  # why it has no text to map (a Kafka value that is none)

    def size_within(self, limit: int) -> bool:
        """Whether the message is at most `limit` bytes: counted in characters first (4
        bytes each at most), encoded only when that bound is over the limit."""
        chars = len(self.item) if self.item is not None else sum(
            len(k) + len(v) for k, v in (self.fields or {}).items()
        )  # fmt: skip
        return chars * 4 <= limit or self.size_bytes() <= limit

    def size_bytes(self) -> int:
        if self.raw is not None:
            return len(self.raw) - len(self.id) - 1
        if self.item is not None:
            return len(self.item.encode(errors="replace"))
        return sum(
            len(k.encode(errors="replace")) + len(v.encode(errors="replace"))
            for k, v in (self.fields or {}).items()
        )
