"""One registry convention for everything that is looked up by name (STYLE.md point 11).

A :class:`Registry` maps names to **config-taking factories**: ``factory(**config)``
builds the object (a mixer, a model, an architecture's class...). The rules, the same for
every registry:

* :meth:`Registry.register` refuses a name that is taken with a :class:`DuplicateNameError`
  (a :class:`~mixbridge.errors.MixbridgeError`, so the CLI prints one line and exits 2);
* :meth:`Registry.get` and :meth:`Registry.create` refuse an unknown name with an
  :class:`~mixbridge.errors.UnknownNameError` that lists the known names;
* :meth:`Registry.names` gives the CLI its ``choices`` (registration order), and
  :meth:`Registry.summary` a plain one-line description for listings.

Registering must not import heavy dependencies: a factory that needs torch imports it when
called, so building a CLI parser from :meth:`Registry.names` stays torch-free. This module
imports only the standard library and :mod:`mixbridge.errors`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from mixbridge.errors import MixbridgeError, UnknownNameError

T = TypeVar("T")


class RegistryError(ValueError, MixbridgeError):
    """A registry entry that cannot be added (a subclass says why)."""


class DuplicateNameError(RegistryError):
    """A name that is already registered in that registry."""


class Registry(Generic[T]):
    """Names -> config-taking factories, for one kind of thing (``what``: "mixer", "model"...).

    Args:
        what: the kind of entry, used in messages (``unknown mixer 'x'; known mixers: ...``).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._factories: dict[str, Callable[..., T]] = {}
        self._summaries: dict[str, str] = {}

    def register(self, name: str, factory: Callable[..., T], summary: str = "") -> None:
        """Add ``factory`` under ``name``; ``factory(**config)`` must build the entry.

        ``summary`` is one plain sentence for listings (no markup).

        Raises:
            DuplicateNameError: ``name`` is already registered.
            RegistryError: ``name`` is empty or ``factory`` is not callable.
        """
        if not name or not isinstance(name, str):
            raise RegistryError(f"a {self.what} name must be a non-empty string, got {name!r}")
        if not callable(factory):
            raise RegistryError(f"the factory of {self.what} '{name}' is not callable: {factory!r}")
        if name in self._factories:
            raise DuplicateNameError(f"{self.what} '{name}' is already registered; pick another name")
        self._factories[name] = factory
        self._summaries[name] = " ".join(summary.split())

    def names(self) -> list[str]:
        """Registered names, in registration order (the CLI's ``choices``)."""
        return list(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name``.

        Raises:
            UnknownNameError: ``name`` is not registered; the message lists the known names.
        """
        try:
            return self._factories[name]
        except (KeyError, TypeError):
            known = ", ".join(self._factories) or "none"
            raise UnknownNameError(f"unknown {self.what} '{name}'; known {self.what}s: {known}") from None

    def create(self, name: str, **config: Any) -> T:
        """Build entry ``name`` with ``config`` (the factory's keyword arguments).

        Raises:
            UnknownNameError: ``name`` is not registered.
            MixbridgeError: whatever the factory raises for a config it cannot build.
        """
        return self.get(name)(**config)

    def summary(self, name: str) -> str:
        """The one-line summary given at registration ("" when none was given).

        Raises:
            UnknownNameError: ``name`` is not registered.
        """
        self.get(name)
        return self._summaries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)
