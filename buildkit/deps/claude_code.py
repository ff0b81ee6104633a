"""The optional claude-code image (--claude-image): Claude Code with mcp-wrapper.

Claude Code ships one native binary per platform on npm
(`@anthropic-ai/claude-code-linux-x64`, `-linux-arm64`, ...). It is fetched outside the
build with `npm pack` (which checks the registry's integrity hash) into
build/claude-code/<version>/, which is all an --offline run reads, and placed in each
platform's tree of the image's build context, next to the mcp-wrapper install tree.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

from buildkit.config import ClaudeImage
from buildkit.deps.image_root import make_dirs, stamp_parents
from buildkit.deps.wheelhouse import platform_slug
from buildkit.errors import StageFailed, UsageError
from buildkit.proc import Runner

NPM_PLATFORMS = {"linux/amd64": "linux-x64", "linux/arm64": "linux-arm64"}
BINARY_IN_PACKAGE = "package/claude"
BINARY_DIR = "usr/local/bin"  # where the image has them, below /
CONFIG_DIR = "etc/claude-code"
MCP_CONFIG = {"mcpServers": {"toolman": {"type": "stdio", "command": "mcp-wrapper", "args": []}}}


def package_for(claude: ClaudeImage, platform: str) -> str:
    try:
        return f"{claude.npm_package}-{NPM_PLATFORMS[platform]}@{claude.version}"
    except KeyError:
        raise UsageError(
            f"Claude Code has no package for {platform}",
            hint=f"use one of {', '.join(NPM_PLATFORMS)}",
        ) from None


def fetch(claude: ClaudeImage, platform: str, cache: Path, offline: bool, runner: Runner) -> Path:
    """The npm tarball of Claude Code for `platform`, from the cache or the registry."""
    directory = cache / claude.version
    name = package_for(claude, platform)
    found = sorted(directory.glob(f"*-{NPM_PLATFORMS[platform]}-{claude.version}.tgz"))
    if found:
        return found[0]
    if offline:
        raise StageFailed(
            f"{name} is not in {directory} and --offline forbids fetching it",
            output="run once online: python -m buildkit wheelhouse --claude-image",
        )
    directory.mkdir(parents=True, exist_ok=True)
    result = runner.call(["npm", "pack", name, "--pack-destination", str(directory),
                          "--json", "--loglevel", "error"], timeout=1800)  # fmt: skip
    if not result.ok:
        raise StageFailed(
            f"fetching {name} from the npm registry failed",
            command=result.command,
            output=result.tail(),
        )
    packed = json.loads(result.output[result.output.index("[") :])
    return directory / str(packed[0]["filename"])


def prepare(
    context: Path,
    claude: ClaudeImage,
    platforms: tuple[str, ...],
    *,
    cache: Path,
    offline: bool,
    runner: Runner,
    mtime: int = 0,
) -> None:
    """Add Claude Code's binary (usr/local/bin/claude) and its MCP config
    (etc/claude-code/mcp.json) to each platform's root-shaped tree in `context`, every file
    and directory at `mtime` so an unchanged rebuild gives identical layers."""
    config = (json.dumps(MCP_CONFIG, indent=2) + "\n").encode()
    for platform in platforms:
        tarball = fetch(claude, platform, cache, offline, runner)
        tree = context / platform_slug(platform)
        binary = make_dirs(tree, BINARY_DIR, mtime) / "claude"
        with tarfile.open(tarball) as archive:
            member = archive.getmember(BINARY_IN_PACKAGE)
            source = archive.extractfile(member)
            if source is None:
                raise StageFailed(f"{tarball.name} holds no {BINARY_IN_PACKAGE}")
            with source, binary.open("wb") as out:
                shutil.copyfileobj(source, out)
        binary.chmod(0o755)
        mcp_json = make_dirs(tree, CONFIG_DIR, mtime) / "mcp.json"
        mcp_json.write_bytes(config)
        mcp_json.chmod(0o644)
        stamp_parents(tree, binary, mtime)
        stamp_parents(tree, mcp_json, mtime)
