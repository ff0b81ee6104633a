"""`orchestrator task ...` against a real orchestrator process (its engine unreachable, so
tasks stay `pending`): what a person running the client notices — the id printed, the
task really there, errors named on one line with the exit code the help promises."""

from __future__ import annotations

import json
from pathlib import Path
from subprocess import CompletedProcess

import httpx
from conftest import AUTH, Running, free_port, task_cli, task_created


def task(running: Running, task_id: str) -> dict[str, object]:
    response = httpx.get(f"{running.base_url}/api/v1/tasks/{task_id}", headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    found: dict[str, object] = response.json()
    return found


def test_run_prints_the_id_of_a_task_that_exists(running_orchestrator: Running) -> None:
    url = running_orchestrator.base_url
    task_id = task_created(url, "--prompt", "fix the bug", "--label", "team=a", "--env", "A=b=c")
    created = task(running_orchestrator, task_id)
    assert created["phase"] == "pending"
    assert created["spec"] == {
        **created["spec"],  # type: ignore[dict-item]
        "prompt": "fix the bug",
        "labels": {"team": "a"},
        "env": {"A": "b=c"},
    }


def test_the_prompt_from_stdin(running_orchestrator: Running) -> None:
    url = running_orchestrator.base_url
    result = task_cli(url, "run", "--prompt-file", "-", stdin="line one\nline two\n")
    assert result.returncode == 0, result.stderr
    spec = task(running_orchestrator, result.stdout.strip())["spec"]
    assert spec["prompt"] == "line one\nline two\n"  # type: ignore[index]


def test_the_same_idempotency_key_gives_the_same_task(running_orchestrator: Running) -> None:
    url = running_orchestrator.base_url
    first = task_created(url, "--prompt", "once", "--idempotency-key", "k-1")
    again = task_created(url, "--prompt", "once", "--idempotency-key", "k-1")
    assert again == first
    other = task_cli(url, "run", "--prompt", "something else", "--idempotency-key", "k-1")
    assert other.returncode == 5
    assert "k-1" in other.stderr
    assert first in other.stderr  # the server's detail names the task the key belongs to


def test_a_binary_executable_file_round_trips(
    running_orchestrator: Running, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 4  # not UTF-8: sent as base64
    local = tmp_path / "tool.bin"
    local.write_bytes(data)
    local.chmod(0o755)
    notes = tmp_path / "notes.md"
    notes.write_text("héllo\n", encoding="utf-8")
    task_id = task_created(
        running_orchestrator.base_url,
        "--prompt",
        "use them",
        "--file",
        f"{local}:bin/tool",
        "--file",
        str(notes),
    )
    files = task(running_orchestrator, task_id)["spec"]["files"]  # type: ignore[index]
    assert files == [
        {"path": "bin/tool", "bytes": len(data), "executable": True},
        {"path": "notes.md", "bytes": len("héllo\n".encode()), "executable": False},
    ]


def run_with_policy(running: Running, tmp_path: Path, policy: object) -> CompletedProcess[str]:
    file = tmp_path / "policy.json"
    file.write_text(json.dumps(policy))
    return task_cli(running.base_url, "run", "--prompt", "x", "--policy", str(file))


def test_a_policy_naming_an_unknown_server_is_refused_naming_the_field(
    running_orchestrator: Running, tmp_path: Path
) -> None:
    result = run_with_policy(running_orchestrator, tmp_path, {"servers": ["no-such-server"]})
    assert result.returncode == 2
    assert "tools.servers" in result.stderr
    assert "no-such-server" in result.stderr
    assert "--policy" in result.stderr  # the option behind the field
    assert "Traceback" not in result.stderr


def test_the_unknown_server_is_named_by_its_index(
    running_orchestrator: Running, tmp_path: Path
) -> None:
    result = run_with_policy(running_orchestrator, tmp_path, {"servers": ["no-such-server"]})
    assert "tools.servers[0]: unknown server 'no-such-server'" in result.stderr


def test_every_refused_field_is_named_on_its_own_line(running_orchestrator: Running) -> None:
    url = running_orchestrator.base_url
    result = task_cli(url, "run", "--prompt", "x", "--memory", "1", "--env", "1x=y")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("orchestrator: error: resources.memory: ") for line in lines)
    assert any("(--memory)" in line for line in lines)
    assert any("env['1x']" in line and "(--env)" in line for line in lines)


def test_a_bad_token_names_the_variable(running_orchestrator: Running) -> None:
    url = running_orchestrator.base_url
    wrong = task_cli(url, "list", token="not-the-token")
    assert wrong.returncode == 3
    assert "ORCHESTRATOR_TOKEN" in wrong.stderr
    missing = task_cli(url, "list", token=None)
    assert missing.returncode == 3
    assert "ORCHESTRATOR_TOKEN" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_an_unknown_id_exits_4(running_orchestrator: Running) -> None:
    url = running_orchestrator.base_url
    for command in ("get", "cancel", "logs"):
        result = task_cli(url, command, "no-such-task")
        assert result.returncode == 4, (command, result.stderr)
        assert "no-such-task" in result.stderr
    # An id is one path segment: it never reaches another endpoint.
    escaping = task_cli(url, "get", "../../../health")
    assert escaping.returncode == 4
    assert "../../../health" in escaping.stderr or "%2F" in escaping.stderr


def test_cancel_a_pending_task(running_orchestrator: Running) -> None:
    url = running_orchestrator.base_url
    task_id = task_created(url, "--prompt", "never mind")
    result = task_cli(url, "cancel", task_id)
    assert result.returncode == 0, result.stderr
    assert "cancelled" in result.stdout
    assert task(running_orchestrator, task_id)["phase"] == "cancelled"
    again = task_cli(url, "cancel", task_id)
    assert again.returncode == 5
    assert "already ended" in again.stderr


def test_list_and_get(running_orchestrator: Running) -> None:
    url = running_orchestrator.base_url
    first = task_created(url, "--prompt", "one", "--label", "team=a", "--agent", "coder")
    second = task_created(url, "--prompt", "two", "--label", "team=b")
    task_cli(url, "cancel", second)

    table = task_cli(url, "list")
    assert table.returncode == 0, table.stderr
    assert "PHASE" in table.stdout
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[1:]}
    assert rows[first][1:3] == ["pending", "coder"]
    assert rows[second][1] == "cancelled"

    only_a = json.loads(task_cli(url, "list", "--label", "team=a", "--json").stdout)
    assert [item["id"] for item in only_a["items"]] == [first]
    cancelled = json.loads(task_cli(url, "list", "--phase", "cancelled", "--json").stdout)
    assert [item["id"] for item in cancelled["items"]] == [second]

    one_page = task_cli(url, "list", "--limit", "1", "--json")
    assert [item["id"] for item in json.loads(one_page.stdout)["items"]] == [second]  # newest
    every = json.loads(task_cli(url, "list", "--limit", "1", "--all", "--json").stdout)
    assert [item["id"] for item in every["items"]] == [second, first]
    assert every["next_cursor"] is None
    oldest = task_cli(url, "list", "--limit", "1", "--all", "--oldest-first", "--json")
    assert [item["id"] for item in json.loads(oldest.stdout)["items"]] == [first, second]
    hinted = task_cli(url, "list", "--limit", "1")
    assert "--all" in hinted.stderr

    shown = task_cli(url, "get", first)
    assert shown.returncode == 0
    assert first in shown.stdout
    assert "pending" in shown.stdout
    assert "team=a" in shown.stdout
    as_json = json.loads(task_cli(url, "get", first, "--json").stdout)
    assert as_json["id"] == first
    assert as_json["spec"]["agent"]["name"] == "coder"


def test_nothing_listening_exits_3_saying_what_to_do() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = task_cli(url, "list")
    assert result.returncode == 3
    assert result.stderr.strip() == (
        f"orchestrator: error: cannot reach the orchestrator at {url} (connection refused); "
        "start it with `orchestrator serve` or pass --url"
    )


def test_bad_local_arguments_are_usage_errors(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # never contacted: the arguments are wrong first
    missing = task_cli(url, "run", "--prompt", "x", "--file", str(tmp_path / "absent"))
    assert missing.returncode == 2
    assert "--file" in missing.stderr
    assert "No such file" in missing.stderr
    assert missing.stderr.startswith("usage: orchestrator task run")
    pair = task_cli(url, "run", "--prompt", "x", "--env", "NOEQUALS")
    assert pair.returncode == 2
    assert "NOEQUALS" in pair.stderr
    policy = tmp_path / "policy.json"
    policy.write_text("{not json")
    bad_policy = task_cli(url, "run", "--prompt", "x", "--policy", str(policy))
    assert bad_policy.returncode == 2
    assert "not valid JSON" in bad_policy.stderr
    branch = task_cli(url, "run", "--prompt", "x", "--branch", "main")
    assert branch.returncode == 2
    assert "--repo" in branch.stderr
    bad_url = task_cli("localhost:8080", "list")
    assert bad_url.returncode == 2
    assert "ORCHESTRATOR_URL" in bad_url.stderr
    for result in (missing, pair, bad_policy, branch, bad_url):
        assert "Traceback" not in result.stderr


def test_help_documents_the_exit_codes() -> None:
    result = task_cli(None, "run", "--help")
    assert result.returncode == 0
    for code in ("124", "130", "ORCHESTRATOR_URL", "ORCHESTRATOR_TOKEN"):
        assert code in result.stdout
    assert "exit codes:" in result.stdout
