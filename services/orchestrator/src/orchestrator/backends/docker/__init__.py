"""The Docker backend (backend.py): tasks as agent + toolman container pairs on an engine."""

from orchestrator.backends.docker.backend import DockerBackend
from orchestrator.backends.docker.options import DockerOptions

__all__ = ["DockerBackend", "DockerOptions"]
