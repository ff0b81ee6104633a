"""Who may see and call what: one decision for listing and for calling.

A tool ``T`` of server ``S`` is visible to (and callable by) agent ``A`` when:

1. it is *exposed*: ``exposed_tools[S]`` lists a pattern matching ``T``; a
   server without an ``exposed_tools`` entry exposes all its tools only if
   ``default_policy.allow_unknown_tools`` is true;
2. ``A``'s policy (``agent_policies[A]``, else the rules in ``default_policy``)
   allows server ``S`` (``allowed_servers`` absent means every server);
3. no ``blocked_tools`` pattern matches it (blocking always wins);
4. ``allowed_tools`` is absent, or one of its patterns matches it.

Tool patterns are shell globs (``*``, ``?``, ``[...]``). In ``exposed_tools``
they match the server's own tool name; in ``allowed_tools``/``blocked_tools``
they match either the exposed name (``git_git_status``) or ``server/tool``
(``git/git_status``). Resources and prompts follow rule 2: an agent sees and
reads them for exactly the servers it may use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal


@dataclass(frozen=True)
class AgentPolicy:
    allowed_servers: frozenset[str] | None = None  # None: every server
    allowed_tools: tuple[str, ...] | None = None  # None: every tool
    blocked_tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Literal["allowed", "not_exposed", "server_not_allowed", "blocked", "not_allowed"]


ALLOW = Decision(True, "allowed")


def matches(patterns: tuple[str, ...], exposed_name: str, server: str, tool: str) -> bool:
    qualified = f"{server}/{tool}"
    return any(fnmatchcase(exposed_name, p) or fnmatchcase(qualified, p) for p in patterns)


@dataclass(frozen=True)
class PolicyRules:
    exposed_tools: dict[str, tuple[str, ...]] = field(default_factory=dict)
    agents: dict[str, AgentPolicy] = field(default_factory=dict)
    default: AgentPolicy = field(default_factory=AgentPolicy)
    allow_unknown_tools: bool = True

    def policy_for(self, agent: str) -> AgentPolicy:
        return self.agents.get(agent, self.default)

    def is_exposed(self, server: str, tool: str) -> bool:
        patterns = self.exposed_tools.get(server)
        if patterns is None:
            return self.allow_unknown_tools
        return any(fnmatchcase(tool, pattern) for pattern in patterns)

    def server_allowed(self, agent: str, server: str) -> bool:
        allowed = self.policy_for(agent).allowed_servers
        return allowed is None or server in allowed

    def decide(self, agent: str, server: str, tool: str, exposed_name: str) -> Decision:
        if not self.is_exposed(server, tool):
            return Decision(False, "not_exposed")
        policy = self.policy_for(agent)
        if policy.allowed_servers is not None and server not in policy.allowed_servers:
            return Decision(False, "server_not_allowed")
        if matches(policy.blocked_tools, exposed_name, server, tool):
            return Decision(False, "blocked")
        if policy.allowed_tools is not None and not matches(
            policy.allowed_tools, exposed_name, server, tool
        ):
            return Decision(False, "not_allowed")
        return ALLOW
