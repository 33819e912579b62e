"""Run the `train` command as `seedvr-desktop train ...` will once cli.py registers it.

Used in-process by the CLI tests and as a script by the subprocess tests (kill -9, torchrun),
with the same exit codes as the real entry point (0, 1 = user error one line, 2 = internal).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

if __name__ == "__main__":  # as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from seedvr_desktop.cli import _Parser
from seedvr_desktop.cli_train import add_train_parser
from seedvr_desktop.errors import UserError


def main(argv: Sequence[str]) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING)
    parser = _Parser(prog="seedvr-desktop")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    add_train_parser(sub)
    try:
        args = parser.parse_args(list(argv))
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    sys.exit(main(sys.argv[1:]))
