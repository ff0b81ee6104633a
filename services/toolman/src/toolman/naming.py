"""Exposed names: ``<server><sep><tool>``, always valid for clients, mapped back exactly.

A server mounted without a prefix (``"prefix": false`` in its config) exposes
its own names. Two originals that would then share one exact name are a
configuration error: neither is exposed, and ``assign`` reports the pair.

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
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

MAX_LENGTH = 64
INVALID = re.compile(r"[^A-Za-z0-9_.-]")
VALID = re.compile(r"[A-Za-z0-9_.-]{1,64}")

Original = tuple[str, str]  # (server, tool)


@dataclass(frozen=True)
class Clash:
    """One exact name claimed by several originals, at least one of them unprefixed."""

    name: str
    originals: tuple[Original, ...]

    def describe(self, kind: str = "tool") -> str:
        owners = " and ".join(
            f"{kind} {tool!r} of server {server!r}" for server, tool in self.originals
        )
        return (
            f"name clash: {owners} would both be exposed as {self.name!r}; "
            'set "prefix": true on one of the servers (neither is exposed until then)'
        )


@dataclass(frozen=True)
class Names:
    """The exposed name of every original that got one, and the clashes that got none."""

    exposed: dict[Original, str] = field(default_factory=dict)
    clashes: tuple[Clash, ...] = ()


def exact(server: str, tool: str, separator: str, unprefixed: Collection[str] = ()) -> str:
    return tool if server in unprefixed else f"{server}{separator}{tool}"


def candidate(server: str, tool: str, separator: str, unprefixed: Collection[str] = ()) -> str:
    return INVALID.sub("_", exact(server, tool, separator, unprefixed))


def _digest(original: Original, length: int) -> str:
    server, tool = original
    return hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:length]


def _hashed(base: str, original: Original, length: int) -> str:
    suffix = _digest(original, length)
    return f"{base[: MAX_LENGTH - length - 1]}-{suffix}"


def assign(originals: Iterable[Original], separator: str) -> dict[Original, str]:
    """Map every (server, tool) to a unique valid exposed name (every server prefixed)."""
    return assign_names(originals, separator).exposed


def assign_names(
    originals: Iterable[Original], separator: str, unprefixed: Collection[str] = ()
) -> Names:
    """Map every (server, tool) to a unique valid exposed name; report exact-name clashes."""
    by_candidate: dict[str, list[Original]] = defaultdict(list)
    for original in set(originals):
        by_candidate[candidate(*original, separator, unprefixed)].append(original)

    names: dict[Original, str] = {}
    to_hash: list[tuple[str, Original]] = []
    clashes: list[Clash] = []
    for base, claimants in by_candidate.items():
        group = claimants
        exacts = [o for o in group if exact(*o, separator, unprefixed) == base]
        if len(exacts) > 1 and any(o[0] in unprefixed for o in exacts):
            clashes.append(Clash(base, tuple(sorted(exacts))))
            group = [o for o in group if o not in exacts]
            exacts = []
        if len(group) == 1 and len(base) <= MAX_LENGTH:
            names[group[0]] = base
        elif len(exacts) == 1 and len(base) <= MAX_LENGTH:
            # The one original that needed no rewriting keeps its readable name.
            names[exacts[0]] = base
            to_hash.extend((base, o) for o in group if o is not exacts[0])
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
    return Names(names, tuple(sorted(clashes, key=lambda clash: clash.name)))


def is_valid(name: str) -> bool:
    return VALID.fullmatch(name) is not None
