"""A tiny timm-style registry: one per concept (policy variants, tasks, renderers, models...)."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import T2SError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> factory mapping with a clear error for unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            key = name or getattr(obj, "__name__")
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} registered twice")
            self._items[key] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        self.register(name)(obj)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise T2SError(
                f"unknown {self.kind} {name!r}",
                f"use one of: {', '.join(sorted(self._items))}",
            ) from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
