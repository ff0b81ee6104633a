"""One module per stage; each exposes `run(service, ctx) -> Outcome`."""

from __future__ import annotations

from collections.abc import Callable

from buildkit.config import Service
from buildkit.model import Outcome
from buildkit.stages import fmt, image, lint, push, test, wheel, wheelhouse
from buildkit.stages.context import Context

StageRunner = Callable[[Service, Context], Outcome]

RUNNERS: dict[str, StageRunner] = {
    "test": test.run,
    "lint": lint.run,
    "fmt": fmt.run,
    "wheel": wheel.run,
    "wheelhouse": wheelhouse.run,
    "image": image.run,
    "push": push.run,
}
