"""ecsrunner: the operator CLI of the runner fleet (docs/cli.md).

Installed as the console script `ecsrunner`; from a checkout, `python ecsrunner_cli.py ...`.
The commands live in the `ecsrunner` package; this file is the entry point.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path

if find_spec("control_plane") is None:  # a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parent / "lambda"))

from ecsrunner.cli import cli, main

__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
