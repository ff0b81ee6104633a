"""The Job of one task: the repository clone and the task's files as init steps, toolman
as a native sidecar, the agent as the Job's one container.

toolman is an init container with `restartPolicy: Always` (a native sidecar, GA since
Kubernetes 1.33) and a startup probe on `/ready`, so the agent starts only once toolman
serves, on the pod's `localhost:3000`. The pod runs as the restricted Pod Security
profile asks (non-root, RuntimeDefault seccomp, no capabilities, no privilege
escalation) without a service account token. `backoffLimit: 0` with a pod failure
policy: a pod lost to a node disruption is made again, an agent that fails fails the
Job at once. The deadline is the task's timeout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lightkube.models.batch_v1 import (
    JobSpec,
    PodFailurePolicy,
    PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern,
    PodFailurePolicyRule,
)
from lightkube.models.core_v1 import (
    Capabilities,
    ConfigMapVolumeSource,
    Container,
    ContainerPort,
    EmptyDirVolumeSource,
    EnvVar,
    EnvVarSource,
    HTTPGetAction,
    KeyToPath,
    PodSecurityContext,
    PodSpec,
    PodTemplateSpec,
    Probe,
    ResourceRequirements,
    SeccompProfile,
    SecretKeySelector,
    SecurityContext,
    Volume,
    VolumeMount,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job

from orchestrator.backends.base import (
    PROMPT_PATH,
    TOOLMAN_PORT,
    TOOLMAN_URL,
    WORKSPACE,
    LaunchError,
)
from orchestrator.backends.kubernetes.inputs import (
    FILES_KEY,
    PROMPT_KEY,
    TOKEN_KEY,
    TOOLMAN_KEY,
    TaskInputs,
    TaskRunRef,
)
from orchestrator.backends.kubernetes.options import (
    KubernetesOptions,
    SecretKeyRef,
    inputs_name,
    labels,
)
from orchestrator.tasks.model import TaskCreate, memory_bytes

AGENT = "agent"
TOOLMAN = "toolman"
VOLUME_ROOT = "/work"  # the workspace volume in the init steps; the workspace is a subPath
WORKSPACE_SUBPATH = "workspace"
FILES_DIR = "/task-files"
TOOLMAN_CONFIG_DIR = "/etc/toolman"
MAX_NAME = 63  # the Job's name is a label value of its pods


def render_job(
    owner: TaskRunRef,
    spec: TaskCreate,
    inputs: TaskInputs,
    options: KubernetesOptions,
    *,
    agent_env: Mapping[str, str] | None = None,
    agent_args: Sequence[str] = (),
) -> Job:
    """`agent_env` and `agent_args` are the operator's (the orchestrator config's
    `agent.env` and `agent.args`); the task's own env is added after them."""
    if len(owner.name) > MAX_NAME:
        raise LaunchError(f"metadata.name: a TaskRun's name has at most {MAX_NAME} characters")
    steps = [_clone(spec, options)] if spec.repository is not None else []
    if inputs.files:
        steps.append(_place_files(options))
    pod = PodSpec(
        restartPolicy="Never",
        automountServiceAccountToken=False,
        enableServiceLinks=False,
        serviceAccountName=options.service_account,
        securityContext=PodSecurityContext(
            runAsNonRoot=True,
            runAsUser=options.uid,
            runAsGroup=options.uid,
            fsGroup=options.fs_group,
            seccompProfile=SeccompProfile(type="RuntimeDefault"),
        ),
        initContainers=[*steps, _toolman(spec, options)],
        containers=[
            _agent(owner, spec, inputs, options, agent_env=agent_env or {}, agent_args=agent_args)
        ],
        volumes=_volumes(owner, inputs, options),
    )
    return Job(
        metadata=owner.meta(owner.name, "job"),
        spec=JobSpec(
            backoffLimit=0,
            activeDeadlineSeconds=spec.timeout_seconds,
            ttlSecondsAfterFinished=options.ttl_seconds_after_finished,
            podFailurePolicy=PodFailurePolicy(
                rules=[
                    PodFailurePolicyRule(
                        action="Ignore",  # not counted: the pod is made again
                        onPodConditions=[
                            PodFailurePolicyOnPodConditionsPattern(
                                type="DisruptionTarget", status="True"
                            )
                        ],
                    ),
                    PodFailurePolicyRule(
                        action="FailJob",
                        onExitCodes=PodFailurePolicyOnExitCodesRequirement(
                            containerName=AGENT, operator="NotIn", values=[0]
                        ),
                    ),
                ]
            ),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=labels(owner.name, "pod")), spec=pod
            ),
        ),
    )


def hardened() -> SecurityContext:
    return SecurityContext(
        allowPrivilegeEscalation=False,
        capabilities=Capabilities(drop=["ALL"]),
        runAsNonRoot=True,
        seccompProfile=SeccompProfile(type="RuntimeDefault"),
    )


def _volume_mount(path: str = VOLUME_ROOT) -> VolumeMount:
    return VolumeMount(name="workspace", mountPath=path)


def _workspace_mount() -> VolumeMount:
    return VolumeMount(name="workspace", mountPath=WORKSPACE, subPath=WORKSPACE_SUBPATH)


def _clone(spec: TaskCreate, options: KubernetesOptions) -> Container:
    repository = spec.repository
    assert repository is not None  # only called with one
    ref = []
    if repository.branch is not None:
        ref = [f"--branch={repository.branch}"]
    elif repository.commit is not None:
        ref = [f"--commit={repository.commit}"]
    dest = f"{VOLUME_ROOT}/{WORKSPACE_SUBPATH}"
    return Container(
        name="clone",
        image=options.clone_image,
        # coreutils' timeout: a server that never answers is killed (exit 124), as on Docker
        command=[
            *("timeout", "--kill-after=10", str(options.clone_timeout_seconds)),
            *("python3", "-P", "-m", "orchestrator.backends.clone"),
        ],
        args=[*ref, "--", repository.url, dest],
        volumeMounts=[_volume_mount()],
        securityContext=hardened(),
    )


def _place_files(options: KubernetesOptions) -> Container:
    return Container(
        name="files",
        image=options.clone_image,
        command=["python3", "-P", "-m", "orchestrator.backends.kubernetes.place_files"],
        args=[FILES_DIR, f"{VOLUME_ROOT}/{WORKSPACE_SUBPATH}"],
        volumeMounts=[
            _volume_mount(),
            VolumeMount(name="files", mountPath=FILES_DIR, readOnly=True),
        ],
        securityContext=hardened(),
    )


def _toolman(spec: TaskCreate, options: KubernetesOptions) -> Container:
    return Container(
        name=TOOLMAN,
        image=options.toolman_image,
        restartPolicy="Always",  # a native sidecar: it runs beside the agent, then stops
        env=[
            *(_env_var(name, value) for name, value in options.toolman_env.items()),
            EnvVar(name="AGENT_NAME", value=spec.agent.name),
        ],
        resources=_limits(options.toolman_cpu, options.toolman_memory_bytes),
        ports=[ContainerPort(name="mcp", containerPort=TOOLMAN_PORT)],
        startupProbe=Probe(
            httpGet=HTTPGetAction(path="/ready", port=TOOLMAN_PORT),
            periodSeconds=1,
            failureThreshold=options.toolman_startup_seconds,
        ),
        volumeMounts=[
            _workspace_mount(),
            VolumeMount(name="toolman-config", mountPath=TOOLMAN_CONFIG_DIR, readOnly=True),
        ],
        securityContext=hardened(),
    )


def _agent(
    owner: TaskRunRef,
    spec: TaskCreate,
    inputs: TaskInputs,
    options: KubernetesOptions,
    *,
    agent_env: Mapping[str, str],
    agent_args: Sequence[str],
) -> Container:
    plain = {**agent_env, **spec.env}
    env = [EnvVar(name=name, value=value) for name, value in plain.items()]
    env += [_env_var(name, ref) for name, ref in inputs.secret_env.items()]
    token = SecretKeySelector(key=TOKEN_KEY, name=inputs_name(owner.name))
    env += [
        EnvVar(name="MCP_TOOLMAN_SERVER_URL", value=TOOLMAN_URL),
        EnvVar(name="MCP_TOOLMAN_TOKEN", valueFrom=EnvVarSource(secretKeyRef=token)),
        EnvVar(name="TASK_ID", value=owner.name),
        EnvVar(name="AGENT_NAME", value=spec.agent.name),
    ]
    args = [*agent_args, *(["--model", spec.agent.model] if spec.agent.model else [])]
    return Container(
        name=AGENT,
        image=options.agent_image,
        args=["direct", "--task-file", PROMPT_PATH, "--", *args],
        env=env,
        workingDir=WORKSPACE,
        resources=_resources(spec),
        volumeMounts=[
            _workspace_mount(),
            VolumeMount(name="task", mountPath=PROMPT_PATH, subPath=PROMPT_KEY, readOnly=True),
        ],
        securityContext=hardened(),
    )


def _env_var(name: str, value: str | SecretKeyRef) -> EnvVar:
    if isinstance(value, str):
        return EnvVar(name=name, value=value)
    selector = SecretKeySelector(key=value.key, name=value.secret)
    return EnvVar(name=name, valueFrom=EnvVarSource(secretKeyRef=selector))


def _resources(spec: TaskCreate) -> ResourceRequirements | None:
    memory = spec.resources.memory
    return _limits(spec.resources.cpu, memory_bytes(memory) if memory is not None else None)


def _limits(cpu: float | None, memory: int | None) -> ResourceRequirements | None:
    limits: dict[str, str] = {}
    if cpu is not None:
        limits["cpu"] = f"{round(cpu * 1000)}m"
    if memory is not None:
        limits["memory"] = str(memory)
    return ResourceRequirements(limits=limits, requests=dict(limits)) if limits else None


def _volumes(owner: TaskRunRef, inputs: TaskInputs, options: KubernetesOptions) -> list[Volume]:
    name = inputs_name(owner.name)

    def items(*keys: tuple[str, str, int | None]) -> ConfigMapVolumeSource:
        return ConfigMapVolumeSource(
            name=name, items=[KeyToPath(key=k, path=p, mode=m) for k, p, m in keys]
        )

    files = [(FILES_KEY, FILES_KEY, None)] + [
        (entry.key, entry.key, 0o555 if entry.executable else 0o444) for entry in inputs.files
    ]
    volumes = [
        Volume(
            name="workspace", emptyDir=EmptyDirVolumeSource(sizeLimit=options.workspace_size_limit)
        ),
        Volume(name="task", configMap=items((PROMPT_KEY, PROMPT_KEY, 0o444))),
        Volume(name="toolman-config", configMap=items((TOOLMAN_KEY, TOOLMAN_KEY, 0o444))),
    ]
    if inputs.files:
        volumes.append(Volume(name="files", configMap=items(*files)))
    return volumes
