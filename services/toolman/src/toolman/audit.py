"""One audit line per tool call (and resource read / prompt get): JSON on stderr.

The line names the agent, what was asked for, the policy decision, how long it
took and how it ended. Tokens and arguments are never part of it.
"""

from __future__ import annotations

from toolman import logs


def record(
    *,
    agent: str,
    kind: str,
    name: str,
    server: str | None,
    decision: str,
    duration_ms: float,
    outcome: str,
    session: str | None = None,
) -> None:
    logs.write_audit(
        {
            "agent": agent,
            "kind": kind,
            "name": name,
            "server": server,
            "decision": decision,
            "duration_ms": round(duration_ms, 3),
            "outcome": outcome,
            "session": session[:8] if session else None,
        }
    )
