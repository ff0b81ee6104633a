"""Exposed names: ``<server><sep><tool>``, always valid for clients, mapped back exactly.

Clients accept 1-64 characters of ``[A-Za-z0-9_.-]``. A name that already fits
is used as is. Otherwise characters outside the set become ``_`` and, if the
result is still too long or two originals end up with the same name, the name
is cut and given a suffix from a SHA-256 of the original pair. The result
depends only on the set of (server, tool) pairs, never on their order, so every
process and every reload names the same tool the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable

MAX_LENGTH = 64
INVALID = re.compile(r"[^A-Za-z0-9_.-]")
VALID = re.compile(r"[A-Za-z0-9_.-]{1,64}")

Original = tuple[str, str]  # (server, tool)


def candidate(server: str, tool: str, separator: str) -> str:
    return INVALID.sub("_", f"{server}{separator}{tool}")


def _digest(original: Original, length: int) -> str:
    server, tool = original
    return hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:length]


def _hashed(base: str, original: Original, length: int) -> str:
    suffix = _digest(original, length)
    return f"{base[: MAX_LENGTH - length - 1]}-{suffix}"


def assign(originals: Iterable[Original], separator: str) -> dict[Original, str]:
    """Map every (server, tool) to a unique valid exposed name."""
    by_candidate: dict[str, list[Original]] = defaultdict(list)
    for original in set(originals):
        by_candidate[candidate(*original, separator)].append(original)

    names: dict[Original, str] = {}
    to_hash: list[tuple[str, Original]] = []
    for base, group in by_candidate.items():
        exact = [o for o in group if f"{o[0]}{separator}{o[1]}" == base]
        if len(group) == 1 and len(base) <= MAX_LENGTH:
            names[group[0]] = base
        elif len(exact) == 1 and len(base) <= MAX_LENGTH:
            # The one original that needed no rewriting keeps its readable name.
            names[exact[0]] = base
            to_hash.extend((base, o) for o in group if o is not exact[0])
        else:
            to_hash.extend((base, o) for o in group)

    taken = set(names.values())
    for base, original in sorted(to_hash, key=lambda item: item[1]):
        length = 8
        name = _hashed(base, original, length)
        while name in taken:  # 32-bit suffix clash: lengthen deterministically
            length += 4
            name = _hashed(base, original, length)
        names[original] = name
        taken.add(name)
    return names


def is_valid(name: str) -> bool:
    return VALID.fullmatch(name) is not None
