"""The policy decision, the one used for listing and for calling."""

from __future__ import annotations

import pytest

from toolman.policy import AgentPolicy, PolicyRules

RULES = PolicyRules(
    exposed_tools={"git": ("git_status", "git_diff*")},
    agents={
        "reviewer": AgentPolicy(
            allowed_servers=frozenset({"git"}), blocked_tools=("git_git_diff_staged",)
        ),
        "coder": AgentPolicy(allowed_tools=("time/*", "git_git_status")),
    },
    default=AgentPolicy(allowed_servers=frozenset({"time"})),
    allow_unknown_tools=True,
)


@pytest.mark.parametrize(
    ("agent", "server", "tool", "reason"),
    [
        ("reviewer", "git", "git_status", "allowed"),
        ("reviewer", "git", "git_diff", "allowed"),
        ("reviewer", "git", "git_diff_staged", "blocked"),
        ("reviewer", "git", "git_commit", "not_exposed"),  # the server's list is authoritative
        ("reviewer", "time", "get_current_time", "server_not_allowed"),
        ("coder", "time", "get_current_time", "allowed"),  # server/tool glob
        ("coder", "git", "git_status", "allowed"),  # exposed-name match
        ("coder", "git", "git_diff", "not_allowed"),
        ("stranger", "time", "get_current_time", "allowed"),  # default_policy rules
        ("stranger", "git", "git_status", "server_not_allowed"),
    ],
)
def test_decisions(agent: str, server: str, tool: str, reason: str) -> None:
    decision = RULES.decide(agent, server, tool, f"{server}_{tool}")
    assert decision.reason == reason
    assert decision.allowed == (reason == "allowed")


def test_unknown_tools_follow_the_default_policy() -> None:
    closed = PolicyRules(exposed_tools={"git": ("*",)}, allow_unknown_tools=False)
    assert closed.decide("a", "git", "anything", "git_anything").allowed
    assert closed.decide("a", "time", "now", "time_now").reason == "not_exposed"
    assert PolicyRules().decide("a", "time", "now", "time_now").allowed
