"""CDK entry point (cdk.json's "app"): `cdk synth` or `python infra/app.py`."""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    # Run as a script, sys.path[0] is infra/, whose constructs/ would shadow the
    # `constructs` library: put the repository root (where `infra` lives) there instead.
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from infra.app_builder import build_app

    build_app().synth()


if __name__ == "__main__":
    main()
