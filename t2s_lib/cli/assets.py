"""``t2s assets fetch|index|info``: 3D models and HDRIs for the renderer."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("assets", help="fetch/index the 3D models and HDRIs the renderer uses")
    sub = p.add_subparsers(dest="assets_command", metavar="ACTION")
    f = sub.add_parser("fetch", help="download (apt/npm, no root), unpack, convert HDRIs, index Sweet Home 3D "
                                     "(--library objects: also 0 A.D., FlightGear, UFO:AI)")
    f.add_argument("--workers", type=int, default=2)
    f.add_argument("--library", action="append", choices=["sweethome3d", "objects"], default=None,
                   help="object library to index (repeatable; default sweethome3d). objects = the combined "
                        "library (~1.9 GB of Debian packages; resumable)")
    f.add_argument("--all", action="store_true", help="every object library")
    f.set_defaults(func=_fetch)
    i = sub.add_parser("index", help="index a folder <root>/<class>/<model>.{obj,glb,ply,stl}")
    i.add_argument("folder")
    i.add_argument("--workers", type=int, default=2)
    i.add_argument("--force", action="store_true")
    i.set_defaults(func=_index)
    n = sub.add_parser("info", help="summarise an indexed library")
    n.add_argument("--library", default="sweethome3d")
    n.add_argument("--json", action="store_true",
                   help='print {"classes": {name: models}, "hdris": [...]} as JSON (per map: source, resolution, '
                        'indoor/night/sun statistics, decision)')
    n.set_defaults(func=_info)
    c = sub.add_parser("contact-sheet", help="render every model once (all off) into one PNG sheet per class")
    c.add_argument("--library", default="sweethome3d")
    c.add_argument("--out", required=True, help="folder for <class>.png + index.json")
    c.add_argument("--classes", nargs="*", default=None, help="only these classes")
    c.add_argument("--size", type=int, default=128)
    c.set_defaults(func=_contact)


def _fetch(args: argparse.Namespace) -> int:
    from ..assets import fetch_assets

    from ..assets.fetch import LIBRARIES

    libs = LIBRARIES if args.all else tuple(args.library or ("sweethome3d",))
    root = fetch_assets(workers=args.workers, libraries=libs)
    print(f"assets ready in {root}")
    return 0


def _index(args: argparse.Namespace) -> int:
    from ..assets.library import index_folder, load_library

    path = index_folder(args.folder, workers=args.workers, force=args.force)
    lib = load_library(str(path))
    print(f"indexed {len(lib.models)} models in {len(lib.classes)} classes into {path}; {len(lib.excluded)} excluded")
    for mid, why in lib.excluded.items():
        print(f"  excluded {mid}: {why}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from ..assets import load_library
    from ..assets.hdri import hdri_summary

    lib = load_library(args.library)
    hdris = hdri_summary()
    if args.json:
        import json

        print(json.dumps({"library": lib.name, "classes": {c: len(ids) for c, ids in lib.classes.items()},
                          "models": len(lib.models), "excluded": len(lib.excluded), "hdris": hdris}, indent=1))
        return 0
    print(f"library {lib.name}: {len(lib.models)} models, {len(lib.classes)} classes, {len(lib.excluded)} excluded")
    for c, ids in lib.classes.items():
        print(f"  {c:20s} {len(ids)}")
    print(f"HDRIs: {len(hdris)}, {sum(r['in_pool'] for r in hdris)} in the background pool "
          f"(outdoor, day, sun 0-60 deg up), default {next(r['name'] for r in hdris if r['default'])}")
    print(f"  {'name':18s} {'source':28s} {'size':>9s} {'indoor':>6s} {'night':>5s} {'sun el':>6s}  decision")
    for r in hdris:
        night = "-" if r["night"] is None else ("yes" if r["night"] else "no")
        print(f"  {r['name']:18s} {r['source'].split(' ')[0]:28s} {r['width']:>4d}x{r['height']:<4d} "
              f"{'yes' if r['indoor'] else 'no':>6s} {night:>5s} {r['sun_elevation']:>6.1f}  "
              f"{'pool' + (' (default)' if r['default'] else '') if r['in_pool'] else 'excluded: ' + str(r['excluded'])}")
    return 0


def _contact(args: argparse.Namespace) -> int:
    from ..assets.contact import contact_sheets

    out = contact_sheets(args.library, args.out, classes=args.classes, size=args.size)
    print(f"contact sheets in {out}")
    return 0
