"""Package attributes imported on first use (PEP 562), so importing a package stays cheap."""

from __future__ import annotations

import importlib


def lazy_attributes(package: str, exports: dict[str, str]):
    """A module ``__getattr__`` for ``package`` that returns ``name`` from the module
    ``exports[name]``, imported when the name is first asked for."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
