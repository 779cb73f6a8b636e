"""Names a package offers without importing their modules until one is used (PEP 562's module ``__getattr__``).

``import netkit.model`` runs ``netkit/__init__.py`` first; were that to
import the lab, every pure module would load pyroute2 with it.  A package
lists where each of its names lives, and the module behind a name is
imported the first time the name is read (``from netkit import Lab``,
``netkit.run_scenario``); the pure names cost nothing more than their own
modules.  Type checkers see the same names through ``if TYPE_CHECKING:``
imports beside the table.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, homes: Mapping[str, tuple[str, ...]]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``homes`` maps a module (relative to it) to the names it gives.

    A name, once imported, is stored in the package, so the next read is a
    plain attribute.  Any other name is the usual AttributeError.
    """
    home_of = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = home_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(home_of))

    return __getattr__, __dir__


__all__ = ["lazy_names"]
