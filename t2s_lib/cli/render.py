"""``t2s render``: render one simulation setting into an ImageFolder dataset."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render", help="render a synthetic dataset for one setting",
        description="Writes OUT/<class>/<model>_<index>.jpg, OUT/manifest.jsonl and OUT/dataset.json. "
                    "Resumes an interrupted run; the result does not depend on --workers.")
    p.add_argument("--setting", required=True, help="9-field key (e.g. 1_1_1_1_1_3_0_1_1), index 0..255 or preset name")
    p.add_argument("--images", type=int, required=True, help="total number of images (split evenly over classes, then models)")
    p.add_argument("--img-size", "--size", dest="img_size", type=int, default=64, help="image side in pixels (paper: 256)")
    p.add_argument("--out", required=True, help="output folder (created when complete)")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--seed", type=int, default=0, help="non-negative; each image depends only on (seed, setting, index)")
    p.add_argument("--library", default="sweethome3d", help="sweethome3d, or a folder <root>/<class>/<model>.obj")
    p.add_argument("--classes", type=int, default=None, help="use N classes of the library (see --class-rule)")
    p.add_argument("--class-rule", default="alphabetical", choices=["alphabetical", "most_models", "tdw"],
                   help="which N classes: the first N by name, the N with most models, or the paper's TDW categories first")
    p.add_argument("--format", dest="image_format", default="jpg", choices=["jpg", "png"])
    p.add_argument("--backend", default="gl", choices=["gl", "tdw"])
    p.add_argument("--msaa", type=int, default=4, choices=[0, 2, 4, 8], help="multisampling samples (0: FXAA instead)")
    p.add_argument("--tonemap", default="aces", choices=["aces", "reinhard", "none"])
    p.add_argument("--device-index", type=int, default=None, help="EGL device (GPU) index; default T2S_EGL_DEVICE or the first")
    p.set_defaults(func=_render)


def _render(args: argparse.Namespace) -> int:
    from ..files import check_user_output
    from ..render import render_dataset

    check_user_output(args.out, owned=("dataset.json",))
    out = render_dataset(args.setting, args.out, args.images, args.img_size, seed=args.seed, library=args.library,
                         workers=args.workers, classes=args.classes, class_rule=args.class_rule,
                         image_format=args.image_format,
                         backend=args.backend, msaa=args.msaa, tonemap=args.tonemap, device_index=args.device_index)
    print(out)
    return 0
