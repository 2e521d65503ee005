"""Where a paginated AWS listing is, item by item, so an export can resume exactly there.

A position is the token that fetches a page and how many of that page's items are behind us.
AWS accepts a nextToken again for the same request, so re-fetching the page and skipping
``skip`` items resumes the listing without repeating or missing an item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["START", "Fetch", "Position", "RepeatedTokenError", "listing"]

# One page for a token (None: the first page): its items and the token of the next page.
Fetch = Callable[[str | None], tuple[list[Any], str | None]]


class RepeatedTokenError(RuntimeError):
    """The service returned a nextToken it had already returned: following it would loop."""


@dataclass(frozen=True)
class Position:
    """The page ``token`` fetches (None: the first) and the items of it already behind us."""

    token: str | None = None
    skip: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"token": self.token, "skip": self.skip}

    @classmethod
    def from_dict(cls, cursor: dict[str, Any]) -> Position:
        token, skip = cursor.get("token"), cursor.get("skip", 0)
        if not (token is None or isinstance(token, str)) or type(skip) is not int or skip < 0:
            raise ValueError(f"not a listing position: token {token!r}, skip {skip!r}")
        return cls(token, skip)


START: Final = Position()


def listing(fetch: Fetch, start: Position = START) -> Iterator[tuple[Any, Position]]:
    """Each item from ``start`` on, with the position just after it.

    After a page's last item the position is the next page's start, so a checkpoint taken
    there does not fetch the finished page again.
    """
    token, skip = start.token, start.skip
    seen: set[str] = set()
    while True:
        items, next_token = fetch(token)
        for index in range(skip, len(items)):
            last = index + 1 == len(items)
            after = Position(next_token, 0) if last and next_token else Position(token, index + 1)
            yield items[index], after
        if not next_token:
            return
        if next_token in seen or next_token == token:
            raise RepeatedTokenError("the service returned a nextToken it had already returned")
        seen.add(next_token)
        token, skip = next_token, 0
