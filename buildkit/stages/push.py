"""push: push every tag of the image, then ask the registry itself whether each tag
resolves to the digest just pushed and carries this commit's labels. The result lists
exactly which tags were pushed and which were not."""

from __future__ import annotations

import os

from buildkit import credentials, reference
from buildkit.config import Service
from buildkit.errors import RegistryError
from buildkit.model import Artifact, Outcome, Status
from buildkit.registry import RegistryClient
from buildkit.stages.context import Context

REVISION = "org.opencontainers.image.revision"


def run(service: Service, ctx: Context) -> Outcome:
    engine = ctx.require_engine()
    image = ctx.artifact_of(f"{service.name}:image", "image")
    refs: list[str] = list(image.details["tags"])
    repo = reference.repository(ctx.options.registry, service.image)
    creds = credentials.resolve(repo.domain, os.environ)
    pushed: dict[str, str] = {}
    try:
        for ref in refs:
            ctx.runner.on_command(f"docker push {ref} (through the docker SDK)")
            pushed[ref] = engine.push(ref, creds.auth_config() if creds else None)
            ctx.runner.on_output(f"pushed {ref} @ {pushed[ref]}")
        digests = set(pushed.values())
        if len(digests) != 1:
            raise RegistryError(
                f"the tags of {repo.name} were pushed at different digests: {sorted(digests)}"
            )
        digest = digests.pop()
        with RegistryClient(repo.domain, creds) as registry:
            for ref in refs:
                tag = ref.rsplit(":", 1)[1]
                manifest = registry.manifest(repo.path, tag)
                if manifest.digest != digest:
                    raise RegistryError(
                        f"the registry resolves {ref} to {manifest.digest}, "
                        f"not to the pushed {digest}"
                    )
            labels = registry.config(repo.path, manifest).get("config", {}).get("Labels") or {}
            if labels.get(REVISION) != ctx.git.commit:
                raise RegistryError(
                    f"{refs[0]} in the registry is labelled revision "
                    f"{labels.get(REVISION)!r}, not {ctx.git.commit!r}"
                )
            ctx.runner.on_output(f"verified {len(refs)} tags in {repo.domain} at {digest}")
    except RegistryError as exc:
        return Outcome(Status.FAILED, str(exc), artifacts=(record(repo.name, refs, pushed),))
    return Outcome(
        Status.OK,
        artifacts=(record(repo.name, refs, pushed, digest=digest, verified=True),),
        summary=f"{len(refs)} tags at {digest[:19]}…, verified in the registry",
    )


def record(
    name: str, refs: list[str], pushed: dict[str, str], *, digest: str = "", verified: bool = False
) -> Artifact:
    return Artifact(
        kind="push",
        name=name,
        details={
            "digest": digest,
            "verified": verified,
            "pushed": [{"ref": ref, "digest": value} for ref, value in pushed.items()],
            "not_pushed": [ref for ref in refs if ref not in pushed],
        },
    )
