"""tomllib where the interpreter has it (3.11+), tomli where it does not."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):  # noqa: UP036 - kept for tools on older interpreters
    import tomllib
else:  # pragma: no cover - the project requires 3.11, this keeps older tools working
    import tomli as tomllib

load = tomllib.load
loads = tomllib.loads
TOMLDecodeError = tomllib.TOMLDecodeError

__all__ = ["TOMLDecodeError", "load", "loads"]
