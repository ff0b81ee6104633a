"""A task's Pods, and what their containers printed, read through the API server
(`pods/log`, as `kubectl logs` reads it): for the task API's logs, and for what the
controller writes when a task ends, as on Docker: the count of its tool calls (toolman's
audit lines) and, for a failed agent, its last line of output.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from lightkube import AsyncClient
from lightkube.resources.core_v1 import Pod

from orchestrator.backends.kubernetes.api import NOT_FOUND, Failure, status_of
from orchestrator.backends.kubernetes.job import AGENT, TOOLMAN
from orchestrator.backends.kubernetes.options import LABEL_TASK
from orchestrator.backends.kubernetes.status import newest_first
from orchestrator.tasks.audit import ToolCallCounter, last_words
from orchestrator.tasks.model import ToolCalls

BAD_REQUEST = 400  # what the API server answers for a container that has not started


async def task_pods(client: AsyncClient, namespace: str, task: str) -> list[Pod]:
    """The Pods of the task's Job (the API server filters by label; checked again for
    servers that do not)."""
    return [
        pod
        async for pod in client.list(Pod, namespace=namespace, labels={LABEL_TASK: task})
        if pod.metadata is not None and (pod.metadata.labels or {}).get(LABEL_TASK) == task
    ]


async def container_log(
    client: AsyncClient, namespace: str, task: str, container: str, *, follow: bool
) -> AsyncIterator[str]:
    """What `container` of the task's newest Pod printed; nothing when there is no Pod or
    the container has not started (or is gone)."""
    pods = newest_first(await task_pods(client, namespace, task))
    name = pods[0].metadata.name if pods and pods[0].metadata else None
    if not name:
        return
    try:
        async for line in client.log(name, namespace=namespace, container=container, follow=follow):
            yield line
    except Failure as exc:
        if status_of(exc) not in (BAD_REQUEST, NOT_FOUND):
            raise


async def tool_calls(client: AsyncClient, namespace: str, task: str, agent: str) -> ToolCalls:
    """The task's tool calls, from its toolman's audit lines."""
    counter = ToolCallCounter(agent)
    async for line in container_log(client, namespace, task, TOOLMAN, follow=False):
        counter.line(line)
    return counter.summary()


async def agent_last_words(client: AsyncClient, namespace: str, task: str) -> str:
    """`; its last output: '...'`, the agent's last line, for a failure's reason."""
    lines = [line async for line in container_log(client, namespace, task, AGENT, follow=False)]
    return last_words(lines)
