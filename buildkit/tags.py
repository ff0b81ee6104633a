"""Which tags an image gets, computed the way docker/metadata-action does.

    --tag v1.2.3 with semver  -> v1.2.3, 1.2.3, 1.2, 1, latest
    --tag v0.4.1 with semver  -> v0.4.1, 0.4.1, 0.4, latest       (no bare "0")
    --tag v2.0.0-rc.1         -> v2.0.0-rc.1, 2.0.0-rc.1            (pre-release: no X.Y, X, latest)
    with sha                  -> also sha-<first 7 of the commit>
Any other --tag is used as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


@dataclass(frozen=True)
class TagRules:
    semver: bool = False
    sha: bool = False


def compute_tags(tag: str, commit: str, rules: TagRules) -> list[str]:
    tags = [tag]
    match = SEMVER.match(tag) if rules.semver else None
    if match:
        major, minor, patch = match["major"], match["minor"], match["patch"]
        version = f"{major}.{minor}.{patch}" + (f"-{match['pre']}" if match["pre"] else "")
        tags.append(version)
        if not match["pre"]:
            tags.append(f"{major}.{minor}")
            if major != "0":
                tags.append(major)
            tags.append("latest")
    if rules.sha and commit:
        tags.append(f"sha-{commit[:7]}")
    return list(dict.fromkeys(tags))


def image_version(tag: str, fallback: str) -> str:
    """The OCI version label: the semver of the tag when it is one, else the git version."""
    match = SEMVER.match(tag)
    return tag.removeprefix("v") if match else fallback


def version_mismatch(tag: str, git_tag: str | None, distance: int, git_version: str) -> str | None:
    """A warning when a release-looking --tag labels software that git versions otherwise."""
    tagged = git_tag is not None and git_tag.removeprefix("v") == tag.removeprefix("v")
    if not SEMVER.match(tag) or (tagged and distance == 0):
        return None
    return (
        f"the images are tagged and labelled version {tag.removeprefix('v')}, but HEAD is not "
        f"tagged {tag}: the software in them reports {git_version}; for a release, tag the "
        f"commit (`git tag {tag}`) and build again"
    )
