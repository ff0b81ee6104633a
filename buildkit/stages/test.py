"""test: the service's pytest suite, in the service's own environment."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from buildkit.cache.keys import Hasher
from buildkit.deps.envs import env_python
from buildkit.model import Artifact, Outcome, Status, Step
from buildkit.stages.context import Context
from buildkit.stages.inputs import add_environment, add_files
from buildkit.stages.protocol import Stage

NO_TESTS_COLLECTED = 5  # pytest's exit code


def run(step: Step, ctx: Context) -> Outcome:
    service = ctx.target(step)
    env = ctx.service_env(service)
    junit = ctx.build_dir / "reports" / f"{service.name}-junit.xml"
    junit.parent.mkdir(parents=True, exist_ok=True)
    junit.unlink(missing_ok=True)
    argv = [str(env_python(env)), "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    if ctx.options.debug:
        argv += ["-vv", "--showlocals"]
    if service.test_workers > 1:
        argv += ["-n", str(service.test_workers)]
    result = ctx.runner.call(argv, cwd=service.path)
    if not result.ok and "unrecognized arguments: -n" in result.output:
        return Outcome(
            Status.FAILED,
            f"test_workers = {service.test_workers} needs pytest-xdist: add it to "
            f"{ctx.relative(service.path / 'pyproject.toml')}'s test extras",
            command=result.command,
            output_tail=result.tail(),
        )
    summary = junit_summary(junit)
    artifacts = (Artifact("junit", ctx.relative(junit)),) if junit.is_file() else ()
    if result.returncode == NO_TESTS_COLLECTED:
        return Outcome(
            Status.FAILED,
            f"no tests collected in {ctx.relative(service.tests_dir)}",
            artifacts,
            result.command,
            result.tail(),
        )
    if not result.ok:
        return Outcome(
            Status.FAILED,
            f"tests failed: {summary or f'exit {result.returncode}'}",
            artifacts,
            result.command,
            result.tail(),
            summary,
        )
    return Outcome(Status.OK, artifacts=artifacts, command=result.command, summary=summary)


def junit_summary(path: Path) -> str:
    """'12 passed, 1 failed, 2 skipped' from pytest's JUnit XML; '' when there is none."""
    if not path.is_file():
        return ""
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - our own pytest's output
    except ET.ParseError:
        return ""
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, "0"))
    failed = counts["failures"] + counts["errors"]
    passed = counts["tests"] - failed - counts["skipped"]
    parts = [f"{passed} passed"]
    if failed:
        parts.append(f"{failed} failed")
    if counts["skipped"]:
        parts.append(f"{counts['skipped']} skipped")
    return ", ".join(parts)


def key_inputs(key: Hasher, step: Step, ctx: Context) -> bool:
    service = ctx.target(step)
    add_files(key, service, ctx)
    add_environment(key, service, ctx)
    key.add("options", [ctx.options.debug, ctx.require_all])
    return True


STAGE = Stage("test", run, key_inputs=key_inputs)
