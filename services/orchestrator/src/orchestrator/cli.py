"""Command line: `orchestrator serve` runs the server (the image's default command);
`orchestrator task ...` is the client for people. The only place that prints errors and
exits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace

from orchestrator import __version__
from orchestrator.settings import Settings, SettingsError, parse_log_level, parse_port

COMMANDS = ("serve", "task", "controller")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Run coding-agent tasks, each an agent container beside a toolman sidecar.",
        epilog="`orchestrator serve --help`, `orchestrator task --help` and "
        "`orchestrator controller --help` tell more.",
    )
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the task API and run the controller (the default)",
        description="Serve the task API on port 8080 and run tasks on the Docker engine.",
        epilog="Environment: ORCHESTRATOR_HOST, ORCHESTRATOR_PORT, ORCHESTRATOR_LOG_LEVEL, "
        "ORCHESTRATOR_CONFIG, ORCHESTRATOR_STATE_DIR, ORCHESTRATOR_TOKEN, DOCKER_HOST; "
        "options override them.",
    )
    add_listen_options(serve, "listen on")
    serve.add_argument("--state-dir", help="where tasks and logs are kept (ORCHESTRATOR_STATE_DIR)")
    serve.add_argument(
        "--check-config", action="store_true", help="check the config, print it, and exit"
    )
    from orchestrator.client.commands import add_task_commands

    add_task_commands(commands)
    add_controller_command(commands)
    return parser


def add_controller_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`orchestrator controller` (orchestrator.backends.kubernetes.serve runs it)."""
    parser = commands.add_parser(
        "controller",
        help="run the Kubernetes TaskRun controller",
        description="Watch TaskRuns in one namespace and run each as a Job (toolman a "
        "native sidecar); /health and /ready on port 8080.",
        epilog="Environment: ORCHESTRATOR_NAMESPACE, ORCHESTRATOR_POD_NAME, "
        "ORCHESTRATOR_CONFIG, ORCHESTRATOR_CLONE_IMAGE, ORCHESTRATOR_HOST, ORCHESTRATOR_PORT, "
        "ORCHESTRATOR_LOG_LEVEL; options override them.",
    )
    parser.add_argument("--namespace", help="the namespace of the TaskRuns and their Jobs")
    parser.add_argument("--identity", help="this replica's name in the Lease (the pod's)")
    parser.add_argument("--server", help="the API server's URL (default: in-cluster)")
    parser.add_argument("--clone-image", help="the image of the clone and files steps")
    add_listen_options(parser, "serve /health and /ready on")


def add_listen_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--host, --port, --log-level, --config: the options every server command takes."""
    parser.add_argument("--host", help=f"address to {what} (default 0.0.0.0)")
    parser.add_argument("--port", help=f"port to {what} (default 8080)")
    parser.add_argument("--log-level", help="critical|error|warning|info|debug (default info)")
    parser.add_argument("--config", help="the JSON config file (ORCHESTRATOR_CONFIG)")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (
        args_list[0].startswith("-") and args_list[0] not in ("-h", "--help", "--version")
    ):
        args_list.insert(0, "serve")  # `orchestrator --port 9000` as before: serve
    args = build_parser().parse_args(args_list)
    if args.command == "task":
        from orchestrator.client.commands import run_task_command

        return run_task_command(args)
    if args.command == "controller":
        from orchestrator.backends.kubernetes.serve import run_controller

        return run_controller(args)
    return serve(args)


def serve(args: argparse.Namespace) -> int:
    from orchestrator.app import create_app, open_store
    from orchestrator.tasks.store import StoreError

    try:
        base = Settings.from_env(config_path=args.config, state_dir=args.state_dir)
        settings = replace(
            base,
            host=args.host or base.host,
            port=parse_port("--port", args.port, base.port),
            log_level=parse_log_level(args.log_level) if args.log_level else base.log_level,
        )
        if args.check_config:  # everything but the state directory, which a server owns
            create_app(settings)
            print(settings.config.model_dump_json(indent=2))
            return 0
        store = open_store(settings)  # before serving: a bad state directory is one line
    except (SettingsError, ValueError) as exc:
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        return 1
    try:
        app = create_app(settings, store=store)
    except ValueError as exc:
        store.close()
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        return 2

    import uvicorn  # imported late: --version and --help stay fast

    from toolman import logs

    logs.configure(settings.log_level)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
    )
    return 0
