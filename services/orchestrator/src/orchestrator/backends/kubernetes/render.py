"""Everything one TaskRun makes, rendered together; and a command that prints it.

    python -m orchestrator.backends.kubernetes.render [--config FILE] [--name N]
        [--namespace NS] TASK.json          # the ConfigMap, Secret and Job of a task
    python -m orchestrator.backends.kubernetes.render --crd   # the TaskRun CRD

TASK.json is a `POST /api/v1/tasks` body; FILE the orchestrator's config (its toolman
base config, the agent's image, env and args). The output is YAML, one document per
object, for `kubectl apply -f -` or for reading.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Secret
from pydantic import ValidationError

from orchestrator.backends.base import LaunchError
from orchestrator.backends.kubernetes.admission import kubernetes_refusal
from orchestrator.backends.kubernetes.crd import task_run_crd
from orchestrator.backends.kubernetes.inputs import TaskRunRef, render_inputs, secret_key_ref
from orchestrator.backends.kubernetes.job import render_job
from orchestrator.backends.kubernetes.options import KubernetesOptions, SecretKeyRef
from orchestrator.config import ConfigError, OrchestratorConfig, load
from orchestrator.tasks.model import TaskCreate


@dataclass(frozen=True)
class RenderedTask:
    config_map: ConfigMap
    secret: Secret
    job: Job


def options_from(config: OrchestratorConfig, clone_image: str | None = None) -> KubernetesOptions:
    """What the orchestrator's config says of every task's Job: the images, toolman's env
    (a literal is a value, `{"file": "/run/secrets/<secret>/<key>"}` a Secret key; an
    `{"env": ...}` is refused, LaunchError naming it), toolman's resources and startup
    bound, the finished Job's TTL (`tasks.ttl_seconds`), the clone's deadline. The clone
    step runs `clone_image`."""
    defaults = KubernetesOptions()
    toolman_env: dict[str, str | SecretKeyRef] = {
        name: value
        if isinstance(value, str)
        else secret_key_ref(f"toolman.env.{name}", value.get("file"))
        for name, value in config.toolman.env.items()
    }
    return KubernetesOptions(
        agent_image=config.agent.image,
        toolman_image=config.toolman.image,
        clone_image=clone_image or defaults.clone_image,
        ttl_seconds_after_finished=math.ceil(config.tasks.ttl_seconds),
        toolman_startup_seconds=math.ceil(config.toolman.ready_timeout_seconds),
        toolman_env=toolman_env,
        toolman_cpu=config.toolman.resources.cpu,
        toolman_memory_bytes=config.toolman_memory,
        clone_timeout_seconds=math.ceil(config.tasks.clone_timeout_seconds),
    )


def render_task(
    owner: TaskRunRef,
    spec: TaskCreate,
    config: OrchestratorConfig,
    options: KubernetesOptions,
    token: str | None = None,
) -> RenderedTask:
    """LaunchError (naming the field) when the task cannot run on Kubernetes as written.
    A task that gives no timeout_seconds gets tasks.default_timeout_seconds as its Job's
    deadline, as on Docker. What the operator's config refuses (admission.py) is refused
    here too, so a TaskRun made with kubectl gets no more than one made through the API."""
    refused = kubernetes_refusal(config, spec)  # again: kubectl, or the config changed
    if refused:
        raise LaunchError(refused[1])
    timeout = spec.timeout_seconds or config.tasks.default_timeout_seconds
    spec = spec.model_copy(update={"timeout_seconds": timeout})
    inputs = render_inputs(owner, spec, config.toolman.config, token, config.agent.secrets)
    job = render_job(
        owner, spec, inputs, options, agent_env=config.agent.env, agent_args=config.agent.args
    )
    return RenderedTask(inputs.config_map, inputs.secret, job)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.backends.kubernetes.render")
    parser.add_argument("task", nargs="?", type=Path, help="a POST /api/v1/tasks body (JSON)")
    parser.add_argument("--crd", action="store_true", help="print the TaskRun CRD")
    parser.add_argument("--config", type=Path, help="the orchestrator's config (JSON)")
    parser.add_argument("--name", default="example-task", help="the TaskRun's name")
    parser.add_argument("--namespace", default="agents")
    parser.add_argument("--uid", default="00000000-0000-0000-0000-000000000000")
    parser.add_argument("--clone-image", help="the image of the clone step (orchestrator's)")
    args = parser.parse_args(argv)
    if args.crd:
        sys.stdout.write(yaml.safe_dump(task_run_crd().to_dict(), sort_keys=False))
        return 0
    if args.task is None:
        parser.error("give TASK.json, or --crd")
    try:
        config = load(args.config)
        spec = TaskCreate.model_validate_json(args.task.read_bytes())
        owner = TaskRunRef(args.name, args.namespace, args.uid)
        rendered = render_task(owner, spec, config, options_from(config, args.clone_image))
    except (ConfigError, LaunchError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "the task"
        sys.stderr.write(f"error: {args.task}: {field}: {first['msg']}\n")
        return 1
    documents = [rendered.config_map.to_dict(), rendered.secret.to_dict(), rendered.job.to_dict()]
    sys.stdout.write(yaml.safe_dump_all(documents, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
