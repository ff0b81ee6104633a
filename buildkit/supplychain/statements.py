"""The statements attached to an image, as verify reads them back.

An attestation is an in-toto statement: `subject` (what it is about: name and sha256
digest) and a predicate. buildkit writes two kinds and reads back what each must name:

    SBOM        CycloneDX; `metadata.component` is the image itself, its `version` the
                manifest digest the SBOM describes
    provenance  SLSA v1; `buildDefinition.resolvedDependencies` holds the source with
                its `gitCommit`, the commit the image was built from
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

PROVENANCE_BUILD_TYPE = "https://github.com/5dlabs/platform/buildkit/image@v1"


@dataclass(frozen=True)
class Subject:
    name: str
    digest: str  # sha256:<hex>


@dataclass(frozen=True)
class Statement:
    predicate_type: str
    subjects: tuple[Subject, ...]
    predicate: Mapping[str, object]  # the predicate as signed: read with the functions below

    @classmethod
    def from_json(cls, data: object) -> Statement:
        if not isinstance(data, dict):
            return cls("", (), {})
        subjects = tuple(
            Subject(
                str(item.get("name", "")), "sha256:" + str(item.get("digest", {}).get("sha256", ""))
            )
            for item in data.get("subject", [])
            if isinstance(item, dict)
        )
        predicate = data.get("predicate", {})
        return cls(
            str(data.get("predicateType", "")),
            subjects,
            predicate if isinstance(predicate, dict) else {},
        )

    def names(self, digest: str) -> bool:
        return any(subject.digest == digest for subject in self.subjects)


def lookup(data: object, *path: str) -> object:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def sbom_digest(statement: Statement) -> str:
    """The image digest the CycloneDX document itself describes ("" if it names none)."""
    value = lookup(statement.predicate, "metadata", "component", "version")
    return value if isinstance(value, str) else ""


def provenance_commit(statement: Statement) -> str:
    """The git commit the provenance says the image was built from ("" if none)."""
    dependencies = lookup(statement.predicate, "buildDefinition", "resolvedDependencies")
    for dependency in dependencies if isinstance(dependencies, list) else []:
        commit = lookup(dependency, "digest", "gitCommit")
        if isinstance(commit, str) and commit:
            return commit
    return ""


@dataclass(frozen=True)
class BuildFacts:
    """What the provenance states about one image's build."""

    image: str  # repository, no tag
    digest: str
    source_url: str
    commit: str
    tag: str
    backend: str  # engine or buildx
    builder_id: str


def provenance(facts: BuildFacts) -> str:
    """An SLSA v1 provenance predicate (JSON) for `cosign attest --type slsaprovenance1`."""
    predicate = {
        "buildDefinition": {
            "buildType": PROVENANCE_BUILD_TYPE,
            "externalParameters": {
                "source": {"uri": f"git+{facts.source_url}@refs/tags/{facts.tag}"},
                "image": f"{facts.image}@{facts.digest}",
            },
            "internalParameters": {"imageBackend": facts.backend},
            "resolvedDependencies": [
                {"uri": f"git+{facts.source_url}", "digest": {"gitCommit": facts.commit}}
            ],
        },
        "runDetails": {"builder": {"id": facts.builder_id}},
    }
    return json.dumps(predicate, indent=2, sort_keys=True)
