"""The stand-in agent of the conformance suite: what Claude Code is to a real task, reduced
to a script the test writes as the task's prompt (JSON), so the real engine runs a real
process whose output, exit code and timing the test decides.

    {"say": "working\\n", "exit": 3, "hold": true, "calls": [["time_now", "allowed", "ok"]]}

asks its toolman (`localhost:3000`, the pair's shared network namespace) to record each
of `calls` (tool, decision, outcome) as an audit line, prints `say`, then (with `hold`)
waits for SIGUSR1 (the test's "finish now"), then exits with `exit`. SIGTERM (a stop:
cancel, deadline) ends it at once with 143, as a shell would. The signals are blocked
before `say` is printed, so once the output is in the log a SIGUSR1 is never lost.
Invoked as the orchestrator invokes its agent image: `direct --task-file FILE -- ARGS...`.
"""

from __future__ import annotations

import json
import signal
import sys
import urllib.request

TOOLMAN = "http://localhost:3000/audit"


def main(argv: list[str]) -> int:
    prompt = argv[argv.index("--task-file") + 1]
    with open(prompt, encoding="utf-8") as file:
        script = json.load(file)
    signals = {signal.SIGUSR1, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    for name, decision, outcome in script.get("calls", []):
        call = {"name": name, "decision": decision, "outcome": outcome}
        request = urllib.request.Request(TOOLMAN, data=json.dumps(call).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()
    sys.stdout.write(str(script.get("say", "")))
    sys.stdout.flush()
    if script.get("hold") and signal.sigwait(signals) == signal.SIGTERM:
        return 143
    return int(script.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
