"""The README is a user's first hour: its option table and its toolman example must stay
true to the code."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from buildkit.args import build_parser, subcommand_parser
from tests.helpers import ROOT, require

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_build_all_option_is_in_the_readme_table() -> None:
    parser = subcommand_parser(build_parser(), "build-all")
    options = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
    table = README[README.index("## Options of `build_all`") : README.index("## The services")]
    missing = [option for option in options if f"`{option}" not in table]
    assert missing == []


def test_the_toolman_example_is_accepted_by_toolman(tmp_path: Path) -> None:
    toolman = ROOT / "build" / "wheel-check" / "toolman" / "bin" / "toolman"
    require(toolman.exists(), "toolman's wheel is not installed; run `nox -s wheels`")
    example = re.search(r"A complete config.*?```json\n(.*?)```", README, re.S)
    assert example is not None
    config = json.loads(example.group(1))
    secret = tmp_path / "ops-token"
    secret.write_text("a-token\n")
    for entry in config["auth"]["tokens"]:  # the secret file lives elsewhere on this machine
        if "file" in entry:
            entry["file"] = str(secret)
    path = tmp_path / "toolman.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "CODER_TOKEN": "x", "SEARCH_API_AUTH": "Bearer y"}
    result = subprocess.run(
        [str(toolman), "--config", str(path), "--check-config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "OK (3 servers, 2 agent policies)" in result.stdout + result.stderr
