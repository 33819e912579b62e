"""Entry script of the frozen app: PyInstaller runs this file as `__main__`.

It only hands over to `seedvr_desktop.cli.main`, the same entry point as the `seedvr-desktop`
command of a pip install, so the bundle and the package behave alike. Two things are specific to
a frozen program:

- `multiprocessing.freeze_support()` must run first: on Windows and macOS a child process of a
  frozen app starts this same executable, and that call turns it into the worker instead of a
  second copy of the app;
- `--self-test` is answered here as well, so the bundle smoke test works whatever version of the
  command line it was built with (cli.py is asked to accept the flag too; see packaging/README.md).
"""

from __future__ import annotations

import multiprocessing
import sys


def main() -> int:
    multiprocessing.freeze_support()
    args = sys.argv[1:]
    if args == ["--self-test"]:
        from seedvr_desktop.selftest import run_self_test

        return run_self_test()
    from seedvr_desktop.cli import main as cli_main

    return int(cli_main(args))


if __name__ == "__main__":
    sys.exit(main())
