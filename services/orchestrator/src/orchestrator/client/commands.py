"""`orchestrator task run|list|get|logs|cancel` (placeholder until the client lands)."""

from __future__ import annotations

import argparse


def add_task_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser("task", help="submit and follow tasks through the API")


def run_task_command(args: argparse.Namespace) -> int:
    return 2
