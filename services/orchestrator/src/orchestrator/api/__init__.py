"""The HTTP API: routers for tasks, health and metrics, and the bearer-token check."""
