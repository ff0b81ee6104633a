"""The stage protocol: everything the pipeline needs to know about a stage, declared by the
stage's own module and registered in one place (buildkit.stages.STAGES).

    name         the stage, as in the plan and the report (test, lint, ..., push)
    run          (step, ctx) -> Outcome; it may raise a BuildkitError, the executor
                 records it as the step's failure
    needs        the stages whose steps must have succeeded first. `image` means the
                 step's own target's image; any other stage means that stage of the
                 service whose wheel the target installs (for the claude-code image:
                 mcp-wrapper's wheel and checks)
    sibling_wheels  the step installs its service's wheel, so it needs the wheels of the
                 sibling services it requires too
    claude       the claude-code image (--claude-image) is one of the stage's targets
    key_inputs   (hasher, step, ctx) -> bool: add everything the result depends on; False
                 when this step cannot be cached. None: the stage is never cached
    still_valid  (step, recorded, ctx) -> the recorded result as it stands for this run
                 (artifacts checked, images tagged as asked), or None when something it
                 produced is gone. None: a record stands as it is
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from buildkit.cache.keys import Hasher
from buildkit.model import Outcome, Result, Step
from buildkit.stages.context import Context

Run = Callable[[Step, Context], Outcome]
KeyInputs = Callable[[Hasher, Step, Context], bool]
StillValid = Callable[[Step, Result, Context], "Result | None"]


@dataclass(frozen=True)
class Stage:
    name: str
    run: Run
    needs: tuple[str, ...] = ()
    sibling_wheels: bool = False
    claude: bool = False
    key_inputs: KeyInputs | None = None
    still_valid: StillValid | None = None
