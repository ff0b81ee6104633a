"""Secret references: values the config names but never contains.

A secret in the config is ``{"env": "NAME"}`` (read from the environment) or
``{"file": "/path"}`` (read from a file, trailing newline stripped, the
Kubernetes secret-volume shape). Header and env values may also be plain
strings; bearer tokens may instead be given as their SHA-256 digest. Resolved
values are never logged or echoed in errors.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

from toolman import schema
from toolman.errors import ConfigError

HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def resolve_secret(value: object, path: str, environ: Mapping[str, str]) -> str:
    """A plain string, or the value behind an ``env`` / ``file`` reference."""
    if isinstance(value, str):
        return value
    ref = schema.obj(value, path, ("env", "file"))
    if len(ref) != 1:
        raise ConfigError(f"{path}: give a string, or exactly one of 'env' or 'file'")
    return _read_reference(ref, path, environ)


def _read_reference(ref: Mapping[str, object], path: str, environ: Mapping[str, str]) -> str:
    if "env" in ref:
        name = schema.string(ref["env"], schema.join(path, "env"))
        secret = environ.get(name)
        if not secret:
            raise ConfigError(f"{schema.join(path, 'env')}: environment variable {name} is not set")
        return secret
    file = schema.string(ref["file"], schema.join(path, "file"))
    try:
        secret = Path(file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"{schema.join(path, 'file')}: cannot read {file}: {exc.strerror}"
        ) from None
    if not secret:
        raise ConfigError(f"{schema.join(path, 'file')}: {file} is empty")
    return secret


def token_digest(item: Mapping[str, object], path: str, environ: Mapping[str, str]) -> str:
    """The SHA-256 hex digest of one ``auth.tokens`` entry's token."""
    given = [key for key in ("sha256", "env", "file") if key in item]
    if len(given) != 1:
        raise ConfigError(
            f"{path}: give exactly one of 'sha256', 'env' or 'file' "
            "(the token itself never goes in the config file)"
        )
    if given[0] == "sha256":
        digest = schema.string(item["sha256"], schema.join(path, "sha256"))
        if not HEX64.fullmatch(digest):
            raise ConfigError(f"{schema.join(path, 'sha256')}: expected 64 hex digits")
        return digest.lower()
    return sha256_hex(_read_reference(item, path, environ))
