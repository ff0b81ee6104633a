"""The Kubernetes engine: a `TaskRun` custom resource per task and, per TaskRun, a
ConfigMap, a Secret and a `batch/v1` Job with toolman as a native sidecar.

    options.py     what the backend is told (images, namespace, user): KubernetesOptions
    crd.py         the TaskRun CustomResourceDefinition, its schema from the task model
    inputs.py      one task's inputs: ConfigMap (prompt, files, toolman config), Secret
    job.py         the Job: clone and file init steps, toolman sidecar, agent container
    place_files.py the init step that writes the task's files into the workspace
    render.py      `python -m orchestrator.backends.kubernetes.render`: print them as YAML
"""
