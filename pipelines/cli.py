"""`autosync`: the project's console command, one sub-command per door.

    autosync sync [--destination postgres] [--json] ...   # = python pipelines/run.py ...
    autosync demo                                         # = python pipelines/run.py --demo
    autosync report [--as-of 2025-06-01] ...              # = python pipelines/report.py ...
    autosync webhooks --port 8000 ...                     # = python -m pipelines.webhooks ...
    autosync emulator --port 8765 ...                     # = python -m autosync_emulator ...

Each sub-command takes the flags of the door it stands for (`autosync sync --help`); the doors'
own entry points keep working. Written with argparse's sub-commands only for the listing: the
flags stay with each door's own parser, so a flag is defined once.
"""
from __future__ import annotations

import sys
from typing import Callable, Dict, Optional, Sequence, Tuple

USAGE = "usage: autosync [-h] [--version] {sync,demo,report,webhooks,emulator} ..."


def _sync(argv: Sequence[str]) -> int:
    from pipelines.run import main

    return main(list(argv), prog="autosync sync")


def _demo(argv: Sequence[str]) -> int:
    from pipelines.run import main

    return main(["--demo", *argv], prog="autosync demo")


def _report(argv: Sequence[str]) -> int:
    from pipelines.report import main

    return main(list(argv), prog="autosync report")


def _webhooks(argv: Sequence[str]) -> int:
    from pipelines.webhooks.cli import main

    return main(list(argv), prog="autosync webhooks")


def _emulator(argv: Sequence[str]) -> int:
    from autosync_emulator.__main__ import main

    return main(list(argv), prog="autosync emulator")


COMMANDS: Dict[str, Tuple[Callable[[Sequence[str]], int], str]] = {
    "sync": (_sync, "sync the AutoSync API into the warehouse (DuckDB, Postgres, BigQuery), then build the dbt marts"),
    "demo": (_demo, "start a seeded local emulator, sync it into its own DuckDB file, build the marts and the report"),
    "report": (_report, "write the shop owner's report (HTML) from the marts"),
    "webhooks": (_webhooks, "receive AutoSync webhooks and trigger incremental syncs"),
    "emulator": (_emulator, "serve the local AutoSync API emulator (tests, demos, benchmarks)"),
}


def help_text() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        USAGE, "",
        "Move an auto-repair shop's data from the AutoSync Shop Manager API into a warehouse (dlt), and model it (dbt).",
        "", "commands:",
        *(f"  {name.ljust(width)}  {about}" for name, (_, about) in COMMANDS.items()),
        "", "options:", "  -h, --help  show this help and exit", "  --version   show the version and exit",
        "", "Run 'autosync <command> --help' for a command's flags.",
    ]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(help_text())
        return 0 if args else 2
    if args[0] == "--version":
        from importlib.metadata import version

        print(f"autosync {version('autosync-elt')}")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"{USAGE}\nautosync: error: unknown command '{args[0]}' (choose from {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    return command[0](args[1:])


if __name__ == "__main__":
    sys.exit(main())
