"""The command line's grammar, stdlib only: the noxfile checks its posargs with it
before anything is installed, so `nox -s build_all -- --bogus` exits 2 at once."""

from __future__ import annotations

import argparse
from pathlib import Path

from buildkit import __version__

DEBUG_HELP = (
    "development build (default: release). Changes exactly this: pytest runs with "
    "-vv --showlocals; every command's output is streamed live instead of only the tail "
    "of a failure; images get PYTHONDEVMODE=1, debug logging (<SERVICE>_LOG_LEVEL=debug, "
    "MCP_WRAPPER_DEBUG=1) and the label dev.buildkit.build-mode=debug. Wheels are the "
    "same as in a release build."
)
STAGE_COMMANDS = {
    "test": ("test", "run each service's tests in its own environment"),
    "lint": ("lint", "ruff check and mypy --strict on each service"),
    "fmt": ("fmt", "ruff format --check on each service (--fix rewrites)"),
    "wheel": ("wheel", "build sdist + wheel per service into dist/ and prove they install"),
    "wheelhouse": (
        "wheelhouse",
        "build the wheels, then fetch their dependencies as wheels for each --platform into "
        "build/wheelhouse/ (for offline image builds)",
    ),
}
DEFAULT_WHEELHOUSE_PLATFORMS = "linux/amd64,linux/arm64"


class Formatter(argparse.HelpFormatter):
    """Options read as in build-all.sh's help: `-t, --tag TAG`."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {metavar}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m buildkit",
        formatter_class=Formatter,
        description="Build, check and push the platform's services (replaces build-all.sh).",
    )
    parser.add_argument("--version", action="version", version=f"buildkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    build_all = commands.add_parser(
        "build-all",
        usage="python -m buildkit build-all [OPTIONS]",
        formatter_class=Formatter,
        help="test, lint, fmt, wheel, image and push every service (like build-all.sh)",
        description="Comprehensive build: test -> lint -> fmt -> wheel -> image -> push, "
        "for every service (or those of --services). Stops at the first failure unless "
        "--keep-going. Precedence: defaults < [tool.buildkit] < BUILDKIT_* < options.",
    )
    add_image_options(build_all)
    build_all.add_argument("--no-docker", action="store_true", help="skip Docker image building")
    build_all.add_argument(
        "--skip-tests", action="store_true", help="skip running tests before building"
    )
    add_common(build_all)

    images = commands.add_parser(
        "images",
        usage="python -m buildkit images [OPTIONS]",
        formatter_class=Formatter,
        help="wheel -> image (-> push) only: no tests, lint or format check",
        description="Build each service's wheel and image and smoke-test it; with -p push "
        "and verify it. For release jobs whose checks ran separately.",
    )
    add_image_options(images)
    add_common(images)

    for name, (_, text) in STAGE_COMMANDS.items():
        sub = commands.add_parser(
            name, help=text, description=text.capitalize() + ".", formatter_class=Formatter
        )
        if name == "fmt":
            sub.add_argument("--fix", action="store_true", help="rewrite files instead of checking")
        if name == "wheelhouse":
            sub.add_argument(
                "--claude-image",
                action="store_true",
                help="also fetch Claude Code for the claude-code image",
            )
            sub.add_argument(
                "--platform",
                metavar="LIST",
                default=DEFAULT_WHEELHOUSE_PLATFORMS,
                help=f"target platforms (default: {DEFAULT_WHEELHOUSE_PLATFORMS})",
            )
        add_common(sub)

    version = commands.add_parser("version", help="print the version computed from git")
    version.add_argument("--json", action="store_true", help="commit, dirty, tag and version")

    verify = commands.add_parser(
        "verify",
        usage="python -m buildkit verify REF --key PUBLIC_KEY",
        formatter_class=Formatter,
        help="check a pushed image's signature, SBOM and provenance",
        description="Resolve REF in its registry, then check that the key signed this "
        "digest, and that a CycloneDX SBOM and an SLSA provenance attestation, both signed "
        "by the key, are about this digest, the SBOM describing it and the provenance naming "
        "the commit of its revision label. One line per check; exit 0 only if all hold.",
    )
    verify.add_argument("ref", metavar="REF", help="the image: registry/path:tag or @sha256:…")
    verify.add_argument(
        "--key",
        metavar="PUBLIC_KEY",
        required=True,
        help="cosign public key: a file (cosign.pub), env://VAR, or keyless:IDENTITY "
        "(a keyless signature by that GitHub Actions workflow@ref)",
    )
    return parser


def add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-t", "--tag", metavar="TAG", help="image tag (default: latest; env BUILDKIT_TAG)"
    )
    parser.add_argument(
        "-r",
        "--registry",
        metavar="REG",
        help="registry prefix (default: ghcr.io/5dlabs/platform; env BUILDKIT_REGISTRY)",
    )
    parser.add_argument(
        "-p",
        "--push",
        action="store_true",
        help="push images to the registry after building, and verify them",
    )
    parser.add_argument(
        "--sign",
        action="store_true",
        help="with --push: sign each pushed digest with cosign, attach its SBOM and SLSA "
        "provenance as attestations, then run `verify` on it",
    )
    parser.add_argument(
        "--sign-key",
        metavar="KEY",
        help="cosign private key for --sign: a file or env://VAR (env BUILDKIT_SIGN_KEY; "
        "its password in COSIGN_PASSWORD), or `keyless` in a GitHub Actions job with "
        "id-token: write",
    )
    parser.add_argument(
        "--claude-image",
        action="store_true",
        help="also build the Claude Code image with the MCP wrapper",
    )
    parser.add_argument(
        "--platform",
        metavar="LIST",
        help="target platforms, comma-separated (default: push_platforms of [tool.buildkit], "
        "linux/amd64,linux/arm64, with --push; the engine's own platform otherwise)",
    )
    parser.add_argument(
        "--builder", metavar="NAME", help="buildx builder to use (asks for the buildx backend)"
    )
    parser.add_argument(
        "--image-backend",
        choices=("auto", "buildx", "engine"),
        help="buildx (one `docker buildx bake` for all images) or engine (the docker SDK, "
        "per platform); auto picks buildx where it works for the builder, platforms, push "
        "and registry cache, else engine (default: auto)",
    )


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="build without any cache: every step runs (no record in build/cache, no reused "
        "image) and Docker builds without its layer cache",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=positive,
        metavar="N",
        help="run up to N independent steps at once (default: the number of CPUs)",
    )
    parser.add_argument(
        "--services",
        metavar="A,B",
        help="only these services (default: all in [tool.buildkit.services])",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="run every step that does not depend on a failed one "
        "(default: stop at the first failure)",
    )
    parser.add_argument(
        "--changed-since",
        metavar="REF",
        help="only the services whose inputs changed since the git ref REF (committed, "
        "staged, modified or untracked)",
    )
    parser.add_argument(
        "--print-matrix",
        action="store_true",
        help="print the selected services as a GitHub Actions matrix (JSON) and exit",
    )
    parser.add_argument(
        "--report",
        metavar="PATH",
        type=Path,
        help="where to write the JSON report (default: build/report.json)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="install only from local caches, never a package index (env BUILDKIT_OFFLINE=1)",
    )


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse, reporting an unknown option with the usage of the command it was given to."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        command = getattr(args, "command", None)
        target = subcommand_parser(parser, command) if command else parser
        target.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def subcommand_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            chosen: argparse.ArgumentParser = action.choices[command]
            return chosen
    return parser
