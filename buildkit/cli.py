"""`python -m buildkit`: the only place that prints errors and decides the exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from buildkit import pipeline
from buildkit.args import (
    DEFAULT_WHEELHOUSE_PLATFORMS,
    STAGE_COMMANDS,
    build_parser,
    parse,
    subcommand_parser,
)
from buildkit.cache.store import StepCache
from buildkit.changes import github_matrix, touched_services
from buildkit.config import Project, config_table, find_project_root, load_project
from buildkit.deps import image_root
from buildkit.deps.envs import Envs, uv_binary
from buildkit.engine.client import Engine
from buildkit.errors import BuildkitError, ConfigError, UsageError
from buildkit.gitinfo import changed_since, read_git_info
from buildkit.model import BUILD_ALL_STAGES
from buildkit.options import (
    Options,
    check_report_path,
    choose,
    default_report,
    env_flag,
    parse_platforms,
    select_services,
    unknown_env_vars,
)
from buildkit.proc import Runner
from buildkit.registry import credentials, reference
from buildkit.report import Report, write_report
from buildkit.stages.context import Context
from buildkit.stages.image import backend as image_backend
from buildkit.supplychain import signing
from buildkit.tags import version_mismatch
from buildkit.ui import TerminalUI

COMMAND_STAGES: dict[str, tuple[str, ...]] = {
    "build-all": BUILD_ALL_STAGES,
    "images": ("wheel", "image", "push"),
    "wheelhouse": ("wheel", "wheelhouse"),
    **{name: (name,) for name in STAGE_COMMANDS if name != "wheelhouse"},
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    ui = TerminalUI(debug=getattr(args, "debug", False))
    try:
        return run_command(args, ui)
    except UsageError as exc:
        ui.error(str(exc))
        subcommand_parser(parser, args.command).print_usage(sys.stderr)
        return exc.exit_code
    except BuildkitError as exc:
        ui.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        ui.error("interrupted")
        return 130


def run_command(args: argparse.Namespace, ui: TerminalUI) -> int:
    if args.command == "version":
        return print_version(args.json)
    if args.command == "verify":
        return run_verify(args.ref, args.key)
    return run_build(args, ui)


def run_verify(ref: str, key: str) -> int:
    """`verify REF --key KEY`: one line per check on stdout; 0 only if every one holds."""
    from buildkit.registry.client import RegistryClient
    from buildkit.supplychain.cosign import Cosign
    from buildkit.supplychain.verify import check_public_key, split_ref, verify

    split_ref(ref)  # a malformed REF or key is a usage error before anything runs
    check_public_key(key, os.environ)

    def registry(domain: str) -> RegistryClient:
        return RegistryClient(domain, credentials.resolve(domain, os.environ))

    result = verify(ref, key, Cosign(Runner()), registry)
    for line in result.lines:
        print(line.render(), flush=True)
    print(f"{ref}: {'verified' if result.ok else 'NOT verified'}")
    return 0 if result.ok else 1


def print_version(as_json: bool) -> int:
    info = read_git_info(Path.cwd())
    for warning in info.warnings:
        print(f"buildkit: warning: {warning}", file=sys.stderr)
    if as_json:
        print(
            json.dumps(
                {
                    "version": info.version,
                    "commit": info.commit,
                    "dirty": info.dirty,
                    "tag": info.tag,
                    "distance": info.distance,
                    "shallow": info.shallow,
                }
            )
        )
    else:
        print(info.version)
    return 0


def resolve_options(args: argparse.Namespace, project_root: Path) -> tuple[Options, list[str]]:
    project = load_project(project_root)
    env = os.environ
    warnings = unknown_env_vars(env)
    stages = COMMAND_STAGES[args.command]
    tag, tag_source = setting(args, project, "tag")
    registry, registry_source = setting(args, project, "registry")
    base_image, base_source = setting(args, project, "base_image")
    if args.report is not None:
        check_report_path(args.report)
    options = Options(
        tag=tag,
        registry=registry,
        report=args.report or default_report(project),
        base_image=base_image,
        push=getattr(args, "push", False),
        debug=args.debug,
        no_docker=getattr(args, "no_docker", False),
        skip_tests=getattr(args, "skip_tests", False),
        claude_image=getattr(args, "claude_image", False),
        no_cache=args.no_cache,
        keep_going=args.keep_going,
        fix=getattr(args, "fix", False),
        offline=args.offline or env_flag(env, "BUILDKIT_OFFLINE"),
        services=select_changed(project, args, select_services(project, args.services)),
        stages=stages,
        platforms=choose_platforms(args, project),
        image_backend=getattr(args, "image_backend", None) or project.image_backend,
        builder=getattr(args, "builder", None) or project.builder,
        jobs=args.jobs or os.cpu_count() or 1,
        sign_key=signing.key_of(getattr(args, "sign", False), getattr(args, "sign_key", None),
                                env, push=getattr(args, "push", False)),
    )  # fmt: skip
    if options.claude_image and project.claude is None:
        raise UsageError(
            "--claude-image: this project has no [tool.buildkit.claude_image]",
            hint="declare image, dockerfile, service, npm_package and version there",
        )
    if options.push and options.no_docker:
        raise UsageError(
            "--push with --no-docker would push nothing",
            hint="drop --no-docker to build and push images, or drop --push",
        )
    if options.builds_images:
        # Every reference, Dockerfile and credential is checked before anything is built.
        for name in options.services:
            reference.repository(options.registry, project.service(name).image, registry_source)
            check_dockerfile(project, name)
        reference.check_tag(options.tag, tag_source)
        reference.check_reference(options.base_image, base_source)
    if options.builder and options.image_backend == "engine":
        warnings.append(
            f"--builder {options.builder} is ignored: only buildx uses a builder "
            "(--image-backend buildx or auto)"
        )
    if options.push:
        credentials.from_environment(env)
    return options, warnings


def check_dockerfile(project: Project, name: str) -> None:
    dockerfile = project.service(name).dockerfile
    if not dockerfile.is_file():
        raise ConfigError(
            f"[tool.buildkit.services.{name}] dockerfile: {dockerfile} does not exist",
            hint="fix the path (relative to pyproject.toml) or add the Dockerfile",
        )
    image_root.check_dockerfile(dockerfile, project.service(name).user_dirs, config_table(name))


# [tool.buildkit] key -> (its option, or "" when it has none; its BUILDKIT_* variable)
SETTINGS = {
    "tag": ("--tag", "BUILDKIT_TAG"),
    "registry": ("--registry", "BUILDKIT_REGISTRY"),
    "base_image": ("", "BUILDKIT_BASE_IMAGE"),
}


def setting(args: argparse.Namespace, project: Project, key: str) -> tuple[str, str]:
    """A setting's value and its source, by precedence: option, variable, project."""
    flag, variable = SETTINGS[key]
    return choose(
        getattr(args, key, None) if flag else None,
        flag,
        env=os.environ,
        variable=variable,
        configured=str(getattr(project, key)),
        key=key,
    )


def select_changed(
    project: Project, args: argparse.Namespace, selected: tuple[str, ...]
) -> tuple[str, ...]:
    """Of the selected services, those whose inputs changed since --changed-since."""
    if not args.changed_since:
        return selected
    workdir, changed = changed_since(project.root, args.changed_since)
    touched = set(touched_services(project, workdir, changed))
    return tuple(name for name in selected if name in touched)


def choose_platforms(args: argparse.Namespace, project: Project) -> tuple[str, ...]:
    """--platform, else push_platforms when pushing, else () for the engine's own."""
    raw = getattr(args, "platform", None)
    if raw is not None and not raw.strip():
        raise UsageError(
            "--platform is empty",
            hint="name platforms (e.g. linux/amd64,linux/arm64), or leave --platform out",
        )
    if raw is not None:
        return parse_platforms(raw)
    if getattr(args, "push", False):
        return project.push_platforms
    if args.command == "wheelhouse":
        return parse_platforms(DEFAULT_WHEELHOUSE_PLATFORMS)
    return ()


def run_build(args: argparse.Namespace, ui: TerminalUI) -> int:
    started = datetime.now(UTC)
    root = find_project_root(Path.cwd())
    options, warnings = resolve_options(args, root)
    project = load_project(root)
    if args.print_matrix:
        print(github_matrix(project, options.services))
        return 0
    if not options.services:
        ui.info(f"nothing to do: no service changed since {args.changed_since}")
        return 0
    git = read_git_info(root)
    warnings += git.warnings
    if options.builds_images:
        mismatch = version_mismatch(options.tag, git.tag, git.distance, git.version)
        warnings += [mismatch] if mismatch else []
    for warning in warnings:
        ui.warning(warning)
    # Fail before any stage runs when images are planned and no engine answers.
    engine = Engine.connect() if options.builds_images else None
    notes: list[str] = []
    if engine is not None:
        backend, note = image_backend.choose(options, Runner(), cache=project.buildx_cache)
        options = replace(options, image_backend=backend)
        if note:
            ui.info(note)
            notes.append(note)
    steps = pipeline.plan(project, options)
    envs = Envs(root / "build", offline=options.offline)
    uv_binary()  # resolved here, before steps run in threads
    ctx = Context(project, options, git, envs, Runner(), engine=engine, env=os.environ)
    cache = None if options.no_cache else StepCache(root / "build" / "cache")
    try:
        results = pipeline.run(steps, ctx, pipeline.RUNNERS, ui, jobs=options.jobs, cache=cache)
    finally:
        if engine is not None:
            engine.close()
    code = pipeline.exit_code(results)
    report = Report(
        started=started,
        duration=(datetime.now(UTC) - started).total_seconds(),
        exit_code=code,
        git=git,
        options=options,
        results=tuple(results),
        warnings=tuple(warnings),
        notes=tuple(notes),
    )
    try:
        write_report(report, options.report)
    finally:
        ui.summary(report, options.report)  # the outcome is shown even if the file is not
    return code
