"""Image references checked against the distribution reference grammar before any build.

reference   := name [":" tag]
name        := [domain "/"] path-component ("/" path-component)*     (at most 255 chars)
domain      := host [":" port]     host: DNS labels, "localhost" or an IPv4 address
path-component := [a-z0-9]+ ((\\.|_|__|-+) [a-z0-9]+)*
tag         := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from buildkit.errors import UsageError

PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
DOMAIN_LABEL = re.compile(r"^(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_NAME = 255
DOCKER_HUB = "docker.io"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class Repository:
    """A repository name split into its registry host and its path."""

    domain: str  # "ghcr.io", "localhost:5000"; docker.io when the name has no domain
    path: str  # "5dlabs/platform/toolman"

    @property
    def name(self) -> str:
        return self.path if self.domain == DOCKER_HUB else f"{self.domain}/{self.path}"

    def ref(self, tag: str) -> str:
        return f"{self.name}:{tag}"

    @property
    def is_loopback(self) -> bool:
        return self.domain.rsplit(":", 1)[0] in LOOPBACK_HOSTS or self.domain.startswith("127.")


def looks_like_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def check_domain(domain: str, what: str) -> None:
    host, _, port = domain.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise UsageError(
            f"{what}: port {port!r} in {domain!r} is not a port number",
            hint="a port is a number from 1 to 65535, e.g. localhost:5000",
        )
    if not all(DOMAIN_LABEL.match(label) for label in host.split(".")):
        raise UsageError(f"{what}: {host!r} is not a valid registry host name")


def parse_registry(prefix: str, what: str = "--registry") -> Repository:
    """A registry prefix such as `ghcr.io/5dlabs/platform` or `localhost:5000/platform`."""
    _, separator, rest = prefix.partition("://")
    if separator:
        raise UsageError(
            f"{what} {prefix!r} starts with a URL scheme",
            hint=f"image references have none: use {rest.rstrip('/') or 'host[:port]/path'}",
        )
    if not prefix or prefix != prefix.strip() or prefix.endswith("/"):
        raise UsageError(
            f"{what} {prefix!r} is not a registry prefix",
            hint="use host[:port]/path, e.g. ghcr.io/5dlabs/platform",
        )
    first, _, rest = prefix.partition("/")
    if looks_like_domain(first):
        check_domain(first, what)
        domain, path = first, rest
    else:
        domain, path = DOCKER_HUB, prefix
    for component in path.split("/") if path else []:
        if not PATH_COMPONENT.match(component):
            raise UsageError(
                f"{what} {prefix!r}: path component {component!r} is not allowed",
                hint="path components are lowercase letters and digits, separated by "
                ". _ __ or dashes (e.g. 5dlabs/platform)",
            )
    return Repository(domain, path)


def repository(prefix: str, image: str, what: str = "--registry") -> Repository:
    registry = parse_registry(prefix, what)
    if not PATH_COMPONENT.match(image):
        raise UsageError(f"image name {image!r} is not a valid repository path component")
    path = f"{registry.path}/{image}" if registry.path else image
    repo = Repository(registry.domain, path)
    if len(repo.name) > MAX_NAME:
        raise UsageError(f"image name {repo.name!r} is longer than {MAX_NAME} characters")
    return repo


def check_tag(tag: str, what: str = "--tag") -> str:
    if not TAG.match(tag):
        raise UsageError(
            f"{what} {tag!r} is not a valid image tag",
            hint="tags are 1-128 of letters, digits, _ . and -, not starting with . or -",
        )
    return tag


def check_reference(ref: str, what: str) -> None:
    """A full reference such as `python:3.11-slim` or `ghcr.io/org/base:1@sha256:…`."""
    name, _, digest = ref.partition("@")
    if digest and not DIGEST.match(digest):
        raise UsageError(
            f"{what} {ref!r}: {digest!r} is not a digest", hint="a digest is sha256:<64 hex digits>"
        )
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        check_tag(tag, f"{what} {ref!r}: tag")
    repo = parse_registry(name, what)
    if not repo.path:
        raise UsageError(f"{what} {ref!r} names no repository", hint="e.g. python:3.11-slim")
