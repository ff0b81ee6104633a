"""buildkit: the platform's typed, nox-driven build toolkit."""

__version__ = "0.1.0"
