"""``python -m t2s_lib.train ...`` = ``t2s pretrain ...`` (handy under ``torchrun``)."""

import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
