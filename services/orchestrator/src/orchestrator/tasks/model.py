"""The task model of the API: what `POST /api/v1/tasks` accepts and `GET` answers.

Pydantic models, because FastAPI validates requests and writes the OpenAPI schema from
them: a bad field answers 422 naming it. Every model forbids unknown keys, so a typo
(`timout_seconds`) is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
# The names the orchestrator sets itself: a task may not override them.
RESERVED_ENV = frozenset({"MCP_TOOLMAN_SERVER_URL", "MCP_TOOLMAN_TOKEN", "TASK_ID", "AGENT_NAME"})
AGENT_NAME = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"
LABEL_KEY = (
    r"^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$"
MEMORY = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]i?|[kmgt]|[KMGT]B?)?$")
MEMORY_UNITS = {
    "": 1, "k": 1000, "K": 1000, "KB": 1000, "Ki": 1024,
    "m": 1000**2, "M": 1000**2, "MB": 1000**2, "Mi": 1024**2,
    "g": 1000**3, "G": 1000**3, "GB": 1000**3, "Gi": 1024**3,
    "t": 1000**4, "T": 1000**4, "TB": 1000**4, "Ti": 1024**4,
}  # fmt: skip
MIN_MEMORY = 6 * 1024**2  # the Docker engine refuses less
MAX_MEMORY = 2**63  # the engines keep limits in a signed 64-bit integer
MAX_LABELS = 64


class Strict(BaseModel):
    # strict: a value of another JSON type is an error, as the schema says, not converted
    # (`"executable": 0`, `"timeout_seconds": "60"`).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Phase(enum.StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def finished(self) -> bool:
        return self in FINISHED

    @property
    def active(self) -> bool:
        return self in (Phase.STARTING, Phase.RUNNING)


FINISHED = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED, Phase.TIMED_OUT})


class WorkspaceFile(Strict):
    """A file placed in the workspace before the agent starts."""

    path: Annotated[str, Field(min_length=1, max_length=1024, examples=["notes/plan.md"])]
    content: Annotated[str, Field(max_length=16 * 1024 * 1024)]
    encoding: Literal["utf-8", "base64"] = "utf-8"
    executable: bool = False

    @field_validator("path")
    @classmethod
    def relative_inside_workspace(cls, value: str) -> str:
        path = PurePosixPath(value)
        if (
            not path.parts
            or path.is_absolute()
            or ".." in path.parts
            or value.endswith("/")
            or "\x00" in value
        ):
            raise ValueError(
                "must be a relative file path inside the workspace (no leading '/', no '..')"
            )
        if path.parts and path.parts[0] == ".git":
            raise ValueError("must not be inside .git")
        return str(path)

    @model_validator(mode="after")
    def decodable(self) -> WorkspaceFile:
        if self.encoding == "base64":
            try:
                base64.b64decode(self.content, validate=True)
            except binascii.Error:
                raise ValueError("content is not valid base64") from None
        return self


class Repository(Strict):
    """A git repository cloned into the workspace before the agent starts."""

    url: Annotated[str, Field(min_length=1, max_length=2048, examples=["https://github.com/o/r"])]
    branch: Annotated[str | None, Field(max_length=255)] = None
    commit: Annotated[str | None, Field(pattern=r"^[0-9a-f]{7,40}$")] = None
    credentials: RepositoryCredentials | None = None

    @field_validator("url")
    @classmethod
    def supported_scheme(cls, value: str) -> str:
        if not re.match(r"^(https?|git)://[^\s]+$", value):
            raise ValueError("must be an http(s):// or git:// URL")
        parts = urlsplit(value)
        if "@" in parts.netloc:  # the URL is shown on every GET, in reasons and logs
            raise ValueError(
                "must not contain credentials (user:token@host); give them as "
                "repository.credentials, a reference to the orchestrator's variable or file"
            )
        _ = parts.port  # a ValueError for a port that is not a number
        if not parts.hostname:
            raise ValueError("must name a host")
        return value

    @model_validator(mode="after")
    def one_ref(self) -> Repository:
        if self.branch is not None and self.commit is not None:
            raise ValueError("give branch or commit, not both")
        if self.credentials is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("credentials need an http(s):// URL (git:// has no authentication)")
        return self


class Agent(Strict):
    name: Annotated[str, Field(pattern=AGENT_NAME, examples=["coder"])] = "agent"
    model: Annotated[str | None, Field(min_length=1, max_length=200)] = None


class ToolPolicy(Strict):
    """Which of the orchestrator's MCP servers toolman starts for the task, and which of
    their tools the agent may list and call: toolman's own agent policy (`allowed_tools`,
    `blocked_tools`: globs on `<server>_<tool>` or `<server>/<tool>`), checked by
    toolman's own config code. A task only narrows what the operator exposes."""

    servers: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default_factory=list, max_length=64, examples=[["time", "git"]]
    )
    allowed_tools: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, examples=[["time_get_current_time", "git/*"]]
    )
    blocked_tools: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)

    @field_validator("servers")
    @classmethod
    def each_once(cls, value: list[str]) -> list[str]:
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:
            raise ValueError(f"{twice[0]!r} is given twice")
        return value


def secret_path_problem(path: str) -> str | None:
    """Why `path` cannot name a secret file, or None: it must be absolute, without `.` or
    `..` components (which would walk out of a directory an allow-list names)."""
    if "\x00" in path:
        return "must not contain a NUL byte"
    parts = path.split("/")
    if not path.startswith("/") or any(part in (".", "..") for part in parts):
        return "must be an absolute path without '.' or '..' components (e.g. /run/secrets/key)"
    return None


def _secret_path(value: str) -> str:
    problem = secret_path_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# A secret file's path, as a task or the operator gives it.
SecretPath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_secret_path)]


class SecretRef(Strict):
    """A secret of the orchestrator's, by reference: its environment variable or file.
    Only references the orchestrator's `task_secrets` allow are accepted."""

    env: Annotated[str | None, Field(pattern=ENV_NAME)] = None
    file: Annotated[SecretPath | None, Field(examples=["/run/secrets/task-token"])] = None

    @model_validator(mode="after")
    def exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self


class RepositoryCredentials(SecretRef):
    """The password or token of an http(s) repository, by reference like a task's secrets
    (only what `task_secrets` allows; resolved at launch, never stored or shown), sent as
    HTTP basic auth with `username` (`x-access-token` suits GitHub's tokens)."""

    username: Annotated[
        str, Field(min_length=1, max_length=255, pattern=r"^[^:\s]+$", examples=["oauth2"])
    ] = "x-access-token"


class Resources(Strict):
    cpu: Annotated[float | None, Field(gt=0, le=256, examples=[1.5])] = None
    memory: Annotated[str | None, Field(examples=["2Gi", "512Mi"])] = None

    @field_validator("memory")
    @classmethod
    def memory_quantity(cls, value: str | None) -> str | None:
        if value is not None and memory_bytes(value) < MIN_MEMORY:
            raise ValueError("must be at least 6Mi")
        return value


def memory_bytes(quantity: str) -> int:
    """`512Mi`, `2G`, `1g` or plain bytes, as the Kubernetes and Docker CLIs write them."""
    found = MEMORY.fullmatch(quantity.strip())
    if not found:
        raise ValueError(f"{quantity!r} is not a memory quantity; write e.g. 512Mi or 2Gi")
    size = float(found.group(1)) * MEMORY_UNITS[found.group(2) or ""]
    if not size < MAX_MEMORY:  # also infinity, from more digits than a float holds
        raise ValueError(f"{quantity!r} is more memory than any engine can limit; write e.g. 2Gi")
    return int(size)


EnvName = Annotated[str, Field(pattern=ENV_NAME)]


class TaskCreate(Strict):
    """The body of `POST /api/v1/tasks`."""

    prompt: Annotated[str, Field(min_length=1, max_length=1_000_000)]
    files: list[WorkspaceFile] = Field(default_factory=list, max_length=1000)
    repository: Repository | None = None
    agent: Agent = Field(default_factory=Agent)
    tools: ToolPolicy = Field(default_factory=ToolPolicy)
    env: dict[EnvName, Annotated[str, Field(max_length=65536)]] = Field(default_factory=dict)
    secrets: dict[EnvName, SecretRef] = Field(default_factory=dict)
    timeout_seconds: Annotated[int | None, Field(ge=1, le=7 * 86400)] = None
    resources: Resources = Field(default_factory=Resources)
    labels: dict[
        Annotated[str, Field(pattern=LABEL_KEY)], Annotated[str, Field(pattern=LABEL_VALUE)]
    ] = Field(default_factory=dict, max_length=MAX_LABELS)

    @model_validator(mode="after")
    def names_are_free(self) -> TaskCreate:
        for field, names in (("env", self.env), ("secrets", self.secrets)):
            reserved = sorted(RESERVED_ENV & set(names))
            if reserved:
                raise ValueError(f"{field}: {', '.join(reserved)} is set by the orchestrator")
        both = sorted(set(self.env) & set(self.secrets))
        if both:
            raise ValueError(f"{', '.join(both)} is given in both env and secrets")
        paths = [file.path for file in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("files: the same path is given twice")
        parents = {str(p) for path in paths for p in PurePosixPath(path).parents[:-1]}
        both_ways = sorted(parents & set(paths))
        if both_ways:
            raise ValueError(f"files: {both_ways[0]} is given as a file and as a directory")
        return self


class ToolCalls(BaseModel):
    """What toolman's audit lines say the agent asked for."""

    allowed: int = 0
    refused: int = 0
    failed: int = 0  # allowed, but the call ended in an error
    by_tool: dict[str, dict[str, int]] = Field(default_factory=dict)


class FileSummary(Strict):
    path: str
    bytes: int
    executable: bool = False


class TaskSpec(TaskCreate):
    """The request as the API shows it back: file contents are summarised, not repeated."""

    files: list[FileSummary] = Field(default_factory=list)  # type: ignore[assignment]

    @classmethod
    def of(cls, create: TaskCreate, files: Sequence[FileSummary]) -> TaskSpec:
        """Without checks: what was stored is shown as it was accepted."""
        return cls.model_construct(**{**dict(create), "files": list(files)})


def file_bytes(file: WorkspaceFile) -> bytes:
    if file.encoding == "base64":
        return base64.b64decode(file.content, validate=True)
    return file.content.encode("utf-8")


class Task(BaseModel):
    """A task as the API shows it: the request (secret values never), its phase, its times."""

    id: str
    phase: Phase
    reason: str | None = None
    exit_code: int | None = None
    created_at: datetime
    launched_at: datetime | None = None  # it left the queue: its containers are being made
    started_at: datetime | None = None  # the agent container started
    finished_at: datetime | None = None
    spec: TaskSpec
    tool_calls: ToolCalls = Field(default_factory=ToolCalls)
    links: dict[str, str] = Field(default_factory=dict)


class TaskPage(BaseModel):
    items: list[Task]
    next_cursor: str | None = None


class LogStream(enum.StrEnum):
    AGENT = "agent"
    TOOLMAN = "toolman"
