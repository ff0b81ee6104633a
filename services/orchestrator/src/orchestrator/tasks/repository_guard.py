"""Where a task's repository may be fetched from.

The orchestrator clones on a task's behalf, from where it runs: beside the engine's
socket, on the operator's networks. So a repository URL is checked against the
operator's `tasks.repository_hosts` (globs on the URL's host, lower case) and, at launch,
every address its host resolves to against `tasks.repository_networks_denied` (by
default loopback, "this host" and link-local, where cloud metadata answers): a task
cannot make the orchestrator fetch from its own services or the metadata endpoint.

Caveat (DNS rebinding): the clone resolves the host again when it connects, and a name
whose answer changes between the two lookups (a short TTL) can still lead there; so can
an HTTP redirect the clone follows. The check narrows what a task can reach; for a hard
line, deny the networks at the host's firewall too, or list `repository_hosts`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any
from urllib.parse import urlsplit

Resolver = Callable[..., list[tuple[Any, ...]]]
Network = IPv4Network | IPv6Network


def host_problem(url: str, hosts: Sequence[str]) -> str | None:
    """Why the operator's host allow-list refuses this URL's host, or None."""
    host = _host(url)
    if any(fnmatchcase(host, pattern.lower()) for pattern in hosts):
        return None
    return (
        f"repository.url: the host {host} is not one tasks may fetch from "
        "(tasks.repository_hosts in the orchestrator's config)"
    )


def literal_address_problem(url: str, networks: Sequence[Network]) -> str | None:
    """The network check for a host written as an address (no lookup needed), or None."""
    try:
        address = ipaddress.ip_address(_host(url))
    except ValueError:
        return None
    return _denied(_host(url), address, networks)


def address_problem(
    url: str, networks: Sequence[Network], resolve: Resolver = socket.getaddrinfo
) -> str | None:
    """Resolve the URL's host: why one of its addresses is in a denied network, or None."""
    host = _host(url)
    if not networks:
        return None  # nothing to keep out: no lookup
    try:
        answers = resolve(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return f"repository.url: the host {host} does not resolve: {exc}"
    for answer in answers:
        address = ipaddress.ip_address(str(answer[4][0]).split("%", 1)[0])
        problem = _denied(host, address, networks)
        if problem:
            return problem
    return None


def _denied(
    host: str, address: IPv4Address | IPv6Address, networks: Sequence[Network]
) -> str | None:
    mapped = address.ipv4_mapped if isinstance(address, IPv6Address) else None
    for network in networks:
        if address in network or (mapped is not None and mapped in network):
            shown = host if host == str(address) else f"{host} ({address})"
            return (
                f"repository.url: the host {shown} is in {network}, a network tasks may not "
                "fetch from (tasks.repository_networks_denied in the orchestrator's config)"
            )
    return None


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
