"""The ``t2s`` command line: one subcommand (group) per stage.

Each module in this package that defines ``register(subparsers)`` contributes subcommands; a
handler is attached with ``parser.set_defaults(func=handler)`` and receives the parsed
``argparse.Namespace``. Handlers import heavy libraries lazily so ``t2s --help`` stays fast.
Errors of type :class:`t2s_lib.errors.T2SError`, and machine faults (read-only or full disk,
permissions, memory: :func:`t2s_lib.errors.os_fault`), are printed as ``error: ...`` /
``fix: ...`` with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from .. import __version__
from ..errors import T2SError, os_fault
from ..procs import sigterm_as_interrupt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t2s",
        description="Task2Sim study: render synthetic data, embed tasks, train the policy, pre-train and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"t2s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0 if args.command is None else 2
    sigterm_as_interrupt()  # a terminated command cancels what it started, as Ctrl-C does
    try:
        result = func(args)
    except (T2SError, OSError, MemoryError, RuntimeError) as exc:
        error = os_fault(exc)
        if error is None:
            raise
        print(f"error: {error.problem}", file=sys.stderr)
        if error.fix:
            print(f"  fix: {error.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: what finished is kept (results, cells, the ledger); run the same command again to "
              "continue", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
