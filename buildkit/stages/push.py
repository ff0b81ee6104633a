"""push: put the image in the registry, then move the tags, then ask the registry itself.

    engine  -> each platform's image by digest, with no tag, and for several platforms
               their index by digest (buildkit.registry.by_digest)
    buildx  -> the bake staged the image in the registry already
then, either way, its SBOM is read back from the registry into build/sbom/ (and, with
--sign, signed and attached), then that manifest goes under each tag (`promote`). No tag
moves before every platform is in the registry, and afterwards each tag must resolve to
that digest, holding exactly the requested platforms, each config stating its
architecture and this commit's revision label. The result says exactly which tags were
pushed and which were not. Registry clients come from the step context (ctx.registry), so
this logic runs as well against an in-memory registry as against a real one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from buildkit.cache.keys import Hasher
from buildkit.errors import BuildkitError, RegistryError
from buildkit.model import Artifact, Outcome, Result, Status, Step
from buildkit.proc import Cancelled
from buildkit.registry import reference
from buildkit.registry.blobs import LayerStore
from buildkit.registry.by_digest import push_platforms
from buildkit.registry.client import RegistryClient
from buildkit.registry.manifests import verify
from buildkit.registry.reference import Repository
from buildkit.stages.context import Context
from buildkit.stages.image.artifacts import IMAGE, BuiltImage
from buildkit.stages.protocol import Stage
from buildkit.supplychain.cosign import Cosign
from buildkit.supplychain.publish import Published, Release, publish, write_sbom
from buildkit.supplychain.statements import BuildFacts


@dataclass
class PushRecord:
    refs: list[str]
    pushed: dict[str, str] = field(default_factory=dict)  # ref -> digest
    platforms: dict[str, str] = field(default_factory=dict)  # platform -> manifest digest
    digest: str = ""
    verified: bool = False
    sbom: str = ""  # build/sbom/<image>.cdx.json, relative to the project
    signed: dict[str, object] = field(default_factory=dict)  # --sign: paths, verify lines

    def artifact(self, name: str) -> Artifact:
        return Artifact(
            kind="push",
            name=name,
            details={
                "digest": self.digest,
                "verified": self.verified,
                "platforms": self.platforms,
                "pushed": [{"ref": ref, "digest": value} for ref, value in self.pushed.items()],
                "not_pushed": [ref for ref in self.refs if ref not in self.pushed],
                **({"sbom": self.sbom} if self.sbom else {}),
                **({"signed": self.signed} if self.signed else {}),
            },
        )


def tag_of(ref: str) -> str:
    return ref.rsplit(":", 1)[1]


def promote(registry: RegistryClient, path: str, digest: str, record: PushRecord) -> str:
    """Put the manifest pushed by `digest` under each tag of the record."""
    manifest = registry.manifest(path, digest)
    for ref in record.refs:
        record.pushed[ref] = registry.put_manifest(
            path, tag_of(ref), manifest.body, manifest.media_type
        )
    return manifest.digest


def built_image(step: Step, ctx: Context) -> BuiltImage:
    return BuiltImage.from_artifact(ctx.artifact_of(f"{step.target}:image", IMAGE))


def run(step: Step, ctx: Context) -> Outcome:
    image = built_image(step, ctx)
    repo = reference.repository(ctx.options.registry, ctx.target(step).image)
    record = PushRecord(list(image.tags))
    if not record.refs:  # nothing would move and nothing could be verified
        return Outcome(
            Status.FAILED, f"{step.target}:image names no tag to push; nothing was pushed"
        )
    try:
        with ctx.registry(repo.domain, ctx.credentials(repo.domain)) as registry:
            pushed = image.staged.digest if image.staged else ""
            if not pushed:
                pushed = push_platforms(
                    ctx.require_engine(),
                    registry,
                    path=repo.path,
                    platforms=[(p.platform, p.id) for p in image.platforms],
                    store=LayerStore(ctx.build_dir / "blobs"),
                    stop=lambda: ctx.runner.cancelled,
                )
            record.digest = pushed
            release = release_of(step, ctx, image=image, repo=repo, digest=pushed)
            sbom = write_sbom(
                release, registry=registry, build_dir=ctx.build_dir, dist_dir=ctx.dist_dir
            )
            record.sbom = str(sbom.relative_to(ctx.root))
            if ctx.options.sign_key:  # by digest, before any tag names the image
                signed = sign(ctx, registry=registry, release=release, sbom=sbom, record=record)
                if not signed.ok:
                    return Outcome(
                        Status.FAILED,
                        f"{repo.name}@{record.digest} was signed, but verify refused it "
                        "(no tag was moved): "
                        + "; ".join(line.render() for line in signed.lines if not line.ok),
                        artifacts=(record.artifact(repo.name),),
                    )
            record.digest = promote(registry, repo.path, pushed, record)
            checked = [
                verify(
                    registry,
                    repo.path,
                    tag_of(ref),
                    digest=record.digest,
                    platforms=image.platform_names,
                    revision=ctx.git.commit,
                )
                for ref in record.refs
            ]
            record.platforms = dict(checked[-1].platforms)
            record.verified = True
    except Cancelled:
        raise  # the executor reports it as cancelled, not failed
    except BuildkitError as exc:  # the registry's refusal, or an image that cannot be read
        return Outcome(
            Status.FAILED,
            str(exc),
            artifacts=(record.artifact(repo.name),),
            error_code=exc.exit_code,
        )
    ctx.runner.on_output(f"verified {len(record.refs)} tags of {repo.name} at {record.digest}")
    count = len(image.platforms)
    kind = f"index of {count} platforms" if count > 1 else "image"
    return Outcome(
        Status.OK,
        artifacts=(record.artifact(repo.name),),
        summary=f"{len(record.refs)} tags -> {kind} {record.digest[:19]}…, verified",
    )


def release_of(
    step: Step, ctx: Context, *, image: BuiltImage, repo: Repository, digest: str
) -> Release:
    """What the pushed digest is, for its SBOM and (with --sign) its provenance."""
    return Release(
        repository=repo,
        digest=digest,
        ref=f"{repo.name}@{digest}",
        wheel_distribution=ctx.target(step).distribution,
        wheel_sha256=image.labels.get("dev.buildkit.wheel-sha256", ""),
        facts=BuildFacts(
            image=repo.name,
            digest=digest,
            source_url=ctx.project.source_url,
            commit=ctx.git.commit,
            tag=ctx.options.tag,
            backend=image.backend,
            builder_id=f"{ctx.project.source_url}/buildkit@{ctx.git.commit}",
        ),
    )


def sign(
    ctx: Context, *, registry: RegistryClient, release: Release, sbom: Path, record: PushRecord
) -> Published:
    """--sign: sign the pushed digest, attach its SBOM and provenance, verify them — all by
    digest, so that a signing failure leaves every tag where it was."""
    published = publish(
        release,
        sbom=sbom,
        key=ctx.options.sign_key,
        cosign=Cosign(ctx.runner),
        registry=registry,
        factory=lambda domain: ctx.registry(domain, ctx.credentials(domain)),
        build_dir=ctx.build_dir,
        env=ctx.env,
    )
    record.signed = published.details(ctx.root)
    for line in published.lines:
        ctx.runner.on_output(line.render())
    return published


def key_inputs(key: Hasher, step: Step, ctx: Context) -> bool:
    image = built_image(step, ctx)
    platforms = [p.to_json() for p in image.platforms]
    staged = image.staged.digest if image.staged else ""  # buildx: what the bake pushed
    key.add("image", [image.id, staged, platforms, list(image.tags), ctx.options.registry])
    key.add("sign", ctx.options.sign_key)
    return True


def still_valid(step: Step, result: Result, ctx: Context) -> Result | None:
    """A cached push counts only while the registry still resolves every tag to its digest."""
    record = next((a.details for a in result.artifacts if a.kind == "push"), None)
    if not record or not record.get("digest"):
        return None
    repo = reference.repository(ctx.options.registry, ctx.target(step).image)
    try:
        with ctx.registry(repo.domain, ctx.credentials(repo.domain)) as registry:
            intact = all(
                registry.manifest(repo.path, tag_of(item["ref"])).digest == item["digest"]
                for item in record.get("pushed", [])
            )
    except RegistryError:
        return None
    return result if intact else None


STAGE = Stage(
    "push",
    run,
    needs=("image", "test", "lint", "fmt"),
    claude=True,
    key_inputs=key_inputs,
    still_valid=still_valid,
)
