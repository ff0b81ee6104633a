"""The Kubernetes engine: a `TaskRun` custom resource per task and, per TaskRun, a
ConfigMap, a Secret and a `batch/v1` Job with toolman as a native sidecar.

    options.py      what the renderers are told (images, user), names and labels
    crd.py          the TaskRun CustomResourceDefinition, its schema from the task model
    inputs.py       one task's inputs: ConfigMap (prompt, files, toolman config), Secret
    job.py          the Job: clone and file init steps, toolman sidecar, agent container
    place_files.py  the init step that writes the task's files into the workspace
    render.py       all of a task's objects; `python -m ...render` prints them as YAML
    api.py          lightkube's async client, the TaskRun type, HTTP status of a failure
    status.py       a TaskRun's status from its Job and Pod
    reconcile.py    one TaskRun brought to where its Job says it is (finalizer, cancel)
    lease.py        leader election with a coordination.k8s.io Lease
    controller.py   watches, a work queue, acting only while leading
    taskruns.py     the task API's store on Kubernetes: TaskRuns read as the `Task` model
    tasks_api.py    `/api/v1/tasks` on TaskRuns (create, list, get, logs, cancel)
    serve.py        `orchestrator controller`: the controller, the task API, the probes
"""
