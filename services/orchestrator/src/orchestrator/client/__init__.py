"""The `orchestrator task ...` commands: the task API over HTTP, for people."""
