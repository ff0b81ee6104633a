"""pip-audit of what a service's image installs, and the verdict on what it found.

Its lock file, `locks/<service>.txt`, pins every package the image installs besides this
repository's own wheels (those are left out of it: an unrelated `toolman` is on PyPI and
its advisories are not ours). Every line is pinned, so it is audited as it stands, nothing
resolved or installed: `pip-audit -r FILE --no-deps --disable-pip`, whose vulnerability
data comes from PyPI. A finding with a fixed version available fails the run unless
`ci/audit-ignore.toml` lists its id (or an alias) with a reason; a finding with no fix yet
is reported and does not fail it.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit.errors import ConfigError

IGNORE_FILE = Path("ci") / "audit-ignore.toml"
# An advisory as pip-audit names it: GHSA-h5c8-rqwp-cp95, PYSEC-2024-1, CVE-2024-22195, ...
ADVISORY = re.compile(r"^[A-Z][A-Z0-9]*(-[0-9A-Za-z]+)+$")
ENTRY_KEYS = ("id", "reason")


def command(requirements: Path, report: Path) -> list[str]:
    """pip-audit of a file whose every line is pinned: nothing resolved, no pip run."""
    return ["pip-audit", "-r", str(requirements), "--no-deps", "--disable-pip",
            "--progress-spinner", "off", "-f", "json", "-o", str(report)]  # fmt: skip


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fix_versions: tuple[str, ...]

    @property
    def fixable(self) -> bool:
        return bool(self.fix_versions)

    def names(self) -> set[str]:
        return {self.id, *self.aliases}

    def line(self) -> str:
        fix = f"fixed in {', '.join(self.fix_versions)}" if self.fixable else "no fix yet"
        return f"{self.package} {self.version}: {self.id} ({fix})"


@dataclass(frozen=True)
class Ignored:
    id: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    audited: int  # packages
    failing: tuple[Finding, ...]  # fixable and not ignored
    reported: tuple[Finding, ...]  # no fix yet, or ignored with a reason

    @property
    def ok(self) -> bool:
        return not self.failing

    def summary(self) -> str:
        packages = f"{self.audited} package{'' if self.audited == 1 else 's'}"
        if not self.failing and not self.reported:
            return f"{packages}, no known vulnerability"
        parts = [packages]
        if self.failing:
            parts.append(
                f"{len(self.failing)} fixable: " + "; ".join(f.line() for f in self.failing)
            )
        if self.reported:
            parts.append(
                f"{len(self.reported)} accepted: " + "; ".join(f.line() for f in self.reported)
            )
        return ", ".join(parts)


def read_ignored(path: Path) -> tuple[Ignored, ...]:
    """The accepted findings of `path` (none when it does not exist)."""
    if not path.is_file():
        return ()
    return parse_ignored(path.read_text(encoding="utf-8"), str(path))


def parse_ignored(text: str, where: str) -> tuple[Ignored, ...]:
    """Each `[[ignore]]` entry: an advisory id, listed once, and a non-empty reason, no
    other key (a misspelt `reason` is refused, not read as missing)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"ignore"})
    if unknown:
        raise ConfigError(f"{where}: unknown table {unknown[0]!r}", hint="only [[ignore]]")
    entries: list[Ignored] = []
    for number, entry in enumerate(data.get("ignore", []), start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: [[ignore]] entry {number} is not a table")
        extra = sorted(set(entry) - set(ENTRY_KEYS))
        if extra:
            raise ConfigError(
                f"{where}: [[ignore]] entry {number} has an unknown key {extra[0]!r}",
                hint=f"an entry has {' and '.join(ENTRY_KEYS)}, nothing else",
            )
        vuln_id, reason = entry.get("id"), entry.get("reason")
        if not isinstance(vuln_id, str) or not ADVISORY.match(vuln_id):
            raise ConfigError(
                f"{where}: [[ignore]] entry {number} has no advisory id (got {vuln_id!r})",
                hint='id = "GHSA-…", "PYSEC-…" or "CVE-…", as pip-audit reports it',
            )
        if vuln_id in {e.id for e in entries}:
            raise ConfigError(f"{where}: {vuln_id} is listed twice")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(
                f"{where}: {vuln_id} is ignored without a reason",
                hint='add reason = "why this finding does not apply or cannot be fixed yet"',
            )
        entries.append(Ignored(vuln_id, reason))
    return tuple(entries)


def findings(report: dict[str, Any]) -> tuple[int, tuple[Finding, ...]]:
    """pip-audit's JSON (`-f json`): how many packages it audited, and what it found."""
    dependencies = report.get("dependencies", [])
    found = tuple(
        Finding(
            package=str(dep["name"]),
            version=str(dep.get("version", "")),
            id=str(vuln["id"]),
            aliases=tuple(str(a) for a in vuln.get("aliases", [])),
            fix_versions=tuple(str(v) for v in vuln.get("fix_versions", [])),
        )
        for dep in dependencies
        for vuln in dep.get("vulns", [])
    )
    return len(dependencies), found


def judge(report_text: str, ignored: tuple[Ignored, ...]) -> Verdict:
    try:
        report = json.loads(report_text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"pip-audit wrote no JSON report: {exc}") from None
    audited, found = findings(report)
    accepted = {entry.id for entry in ignored}
    failing = tuple(f for f in found if f.fixable and not f.names() & accepted)
    return Verdict(audited, failing, tuple(f for f in found if f not in failing))
