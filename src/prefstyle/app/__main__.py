"""``python -m prefstyle.app``: the same as ``prefstyle serve`` (same options)."""

from __future__ import annotations

import sys

import typer

from prefstyle.cli.serve_cmd import serve
from prefstyle.errors import PrefstyleError


def main() -> int:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(serve)
    try:
        app(standalone_mode=False)
    except PrefstyleError as e:
        print(f"prefstyle: error: {e}", file=sys.stderr)
        return 2
    except typer.Exit as e:
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
