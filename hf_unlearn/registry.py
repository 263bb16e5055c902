"""A named registry: methods, metrics and forget kinds are each one of these, looked up by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import UnlearnError

T = TypeVar("T")


class Registry(Generic[T]):
    """Items by name, in registration order (the order lists, tables and the app's choices show them in)."""

    def __init__(self, what: str, name_of: Callable[[T], str], aliases: dict[str, str] | None = None) -> None:
        self.what, self.name_of, self.aliases = what, name_of, dict(aliases or {})
        self._items: dict[str, T] = {}

    def register(self, item: T, *, replace: bool = True) -> T:
        """Add ``item``; with ``replace=False`` a name already taken by another item is an error."""
        name = self.name_of(item)
        if not replace and name in self._items and self._items[name] is not item:
            raise ValueError(f"a {self.what} '{name}' is registered already")
        self._items[name] = item
        return item

    def unregister(self, name: str) -> None:
        """Remove an item (tests and notebooks that registered one for a while)."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        key = (name or "").strip()
        key = self.aliases.get(key.lower(), key) if key not in self._items else key
        if key not in self._items and key.lower() in self._items:
            key = key.lower()
        if key not in self._items:
            raise UnlearnError(f"unknown {self.what} '{name}'; available {self.what}s: {', '.join(self._items)}")
        return self._items[key]

    def names(self) -> list[str]:
        return list(self._items)

    def items(self) -> list[T]:
        return list(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items
