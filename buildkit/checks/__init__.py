"""`nox -s ci`: every check of a release candidate in one run, one summary table at the
end, one exit code — what `ci-checks.sh` did, for this project.

    plan.py    the checks: format, lint (Python, workflows, scripts, Dockerfiles), wheels,
               tests, lock files, pip-audit per service environment, TODO/FIXME count
    audit.py   pip-audit's findings for one environment, and which of them fail the run
    run.py     runs the checks in order (each one whatever the others did), the table,
               the exit code; `python -m buildkit.checks` is its entry point
"""
