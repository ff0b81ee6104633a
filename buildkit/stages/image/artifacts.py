"""What an image step hands to its push step, typed: the built image (either backend) and,
for buildx, the staged image the bake left in the registry. In the report (and the step
record) they are `image` and `staged-image` artifacts; these classes are the only code
that writes or reads those artifacts' details."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from buildkit.engine.build import PlatformImage
from buildkit.model import Artifact

IMAGE = "image"
STAGED = "staged-image"


@dataclass(frozen=True)
class Staged:
    """An image a bake pushed under a staging tag: `ref` and the digest the tags get."""

    target: str
    refs: tuple[str, ...]  # the tags it is to get
    ref: str
    digest: str  # "" when the bake loaded the image into the engine instead
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_artifact(self) -> Artifact:
        details = {"refs": list(self.refs), "ref": self.ref, "digest": self.digest,
                   "labels": dict(self.labels)}  # fmt: skip
        return Artifact(STAGED, self.target, details=details)

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> Staged:
        details = artifact.details
        return cls(artifact.name, tuple(details["refs"]), str(details["ref"]),
                   str(details["digest"]), dict(details.get("labels") or {}))  # fmt: skip


@dataclass(frozen=True)
class BuiltImage:
    """An image built, tagged and smoke-tested on every platform."""

    tags: tuple[str, ...]
    backend: str  # engine or buildx
    platforms: tuple[PlatformImage, ...]
    labels: Mapping[str, str]
    id: str = ""  # of the image the plain tags name locally ("" when only in a registry)
    size: int | None = None
    staged: Staged | None = None  # buildx with --push: where the bake put it
    notes: Mapping[str, Any] = field(default_factory=dict)  # for the report only

    @property
    def name(self) -> str:
        return self.tags[0]

    @property
    def platform_names(self) -> list[str]:
        return [image.platform for image in self.platforms]

    def to_artifact(self) -> Artifact:
        details: dict[str, Any] = {
            "id": self.id,
            "tags": list(self.tags),
            "backend": self.backend,
            "platforms": [image.to_json() for image in self.platforms],
            "labels": dict(self.labels),
            **self.notes,
        }
        if self.staged is not None:
            details["staged"] = {"ref": self.staged.ref, "digest": self.staged.digest}
        return Artifact(IMAGE, self.name, size=self.size, details=details)

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> BuiltImage:
        details = dict(artifact.details)
        known = ("id", "tags", "backend", "platforms", "labels", "staged")
        staged = details.get("staged") or None
        tags = tuple(details["tags"])
        return cls(
            tags=tags,
            backend=str(details["backend"]),
            platforms=tuple(PlatformImage.from_json(p) for p in details["platforms"]),
            labels=dict(details.get("labels") or {}),
            id=str(details.get("id") or ""),
            size=artifact.size,
            staged=Staged("", tags, staged["ref"], staged["digest"]) if staged else None,
            notes={key: value for key, value in details.items() if key not in known},
        )
