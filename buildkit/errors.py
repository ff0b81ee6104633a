"""Errors buildkit reports to its users, one exit code per class.

    BuildkitError (1)
    ├── UsageError (2)          bad command-line input
    ├── ConfigError (3)         [tool.buildkit], BUILDKIT_* or a value derived from them
    ├── ToolMissingError (4)    a program buildkit runs is not installed
    ├── GitError (5)            the repository cannot be read
    ├── DockerError (6)         no engine, or the engine refused a build/run
    ├── RegistryError (7)       a registry refused, is unreachable, or disagrees with a push
    └── StageFailed (1)         a stage of the pipeline failed (its output is in the report)

Only the CLI prints these and exits; everything else raises them with a message
that names the bad value and how to fix it.
"""

from __future__ import annotations


class BuildkitError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(BuildkitError):
    exit_code = 2


class ConfigError(BuildkitError):
    exit_code = 3


class ToolMissingError(BuildkitError):
    exit_code = 4


class GitError(BuildkitError):
    exit_code = 5


class DockerError(BuildkitError):
    exit_code = 6


class RegistryError(BuildkitError):
    exit_code = 7


class StageFailed(BuildkitError):
    """A stage's command failed; carries the command and the end of its output."""

    exit_code = 1

    def __init__(self, message: str, *, command: str | None = None, output: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.output = output
