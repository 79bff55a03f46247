"""The `prefstyle` command line (typer). Sub-commands live in small modules beside this one."""

from __future__ import annotations

import sys

import typer

from prefstyle.errors import PrefstyleError

app = typer.Typer(
    name="prefstyle",
    help="Personalized photo retouching learned from pairwise preferences.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from prefstyle.cli import (
        data_cmd,
        demo_cmd,
        evaluate_cmd,
        export_lut_cmd,
        lut_cmd,
        personalize_cmd,
        serve_cmd,
        styles_cmd,
        train_cmd,
    )

    app.command("demo")(demo_cmd.demo)
    app.command("train")(train_cmd.train)
    app.command("personalize")(personalize_cmd.personalize)
    app.command("enhance")(personalize_cmd.enhance)
    app.command("evaluate")(evaluate_cmd.evaluate)
    app.command("export-lut")(export_lut_cmd.export_lut)
    app.command("serve")(serve_cmd.serve)

    app.add_typer(styles_cmd.app, name="styles")
    app.add_typer(lut_cmd.app, name="lut")
    app.add_typer(data_cmd.app, name="data")


_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user-input errors into one line on stderr and exit 2."""
    try:
        rv = app(args=argv, standalone_mode=False)
    except PrefstyleError as e:
        print(f"prefstyle: error: {e}", file=sys.stderr)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("prefstyle: aborted", file=sys.stderr)
        return 1
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            return e.exit_code
        raise
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
