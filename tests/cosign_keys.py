"""cosign key pairs for the signing tests, made by the real cosign (no password)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import require


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path


def make_keys(directory: Path) -> Keys:
    """`cosign generate-key-pair` in `directory` (cosign missing: skip, or fail in CI)."""
    require(shutil.which("cosign") is not None, "cosign is not installed; run ci/release-tools.sh")
    directory.mkdir(parents=True)
    subprocess.run(
        ["cosign", "generate-key-pair"],
        cwd=directory,
        env={**os.environ, "COSIGN_PASSWORD": ""},  # whichever cosign is on PATH
        capture_output=True,
        check=True,
        timeout=60,
    )
    return Keys(directory / "cosign.key", directory / "cosign.pub")
