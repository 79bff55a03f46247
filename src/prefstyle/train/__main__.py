"""``python -m prefstyle.train CONFIG.yaml [key=value ...] [--resume] [--stop-after K]``.

The entry point for ``torchrun --nproc_per_node=N -m prefstyle.train ...`` (multi-process
training); ``prefstyle train`` is the same command inside the main CLI.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    import typer

    from prefstyle.cli.train_cmd import train
    from prefstyle.errors import PrefstyleError

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(train)
    try:
        app(args=argv, standalone_mode=False)
    except PrefstyleError as e:
        print(f"prefstyle: error: {e}", file=sys.stderr)
        return 2
    except typer.Exit as e:
        return e.exit_code
    return 0


if __name__ == "__main__":
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun every file is written and the process group left by now; skip the
        # interpreter's teardown, where a still-joinable native thread (gloo, OpenMP) now and then
        # aborts a worker ("terminate called without an active exception") after its work is done.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
