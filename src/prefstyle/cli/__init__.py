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
        export_preset_cmd,
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
    app.command("export-preset")(export_preset_cmd.export_preset)
    app.command("serve")(serve_cmd.serve)

    app.add_typer(styles_cmd.app, name="styles")
    app.add_typer(lut_cmd.app, name="lut")
    app.add_typer(data_cmd.app, name="data")


_register()


def _usage_exception_types() -> tuple[type[BaseException], ...]:
    """The click exception classes a usage mistake can raise.

    typer 0.29 bundles its own copy of click (``typer._click``, whose exceptions derive from
    ``typer.exceptions.TyperException``) and raises those; sub-commands built on plain click
    raise ``click.ClickException``. The two are unrelated classes, so both are caught.
    """
    types: list[type[BaseException]] = []
    try:
        from typer.exceptions import TyperException

        types.append(TyperException)
    except ImportError:  # older typer: it uses the installed click
        pass
    try:
        import click

        types.append(click.ClickException)
    except ImportError:
        pass
    return tuple(types)


def usage_error_line(e: BaseException) -> str:
    """One line for a click usage error: what is wrong, and where to look for help.

    No arguments at all (click's "no args is help") names the commands instead of printing
    the whole help text.
    """
    ctx = getattr(e, "ctx", None)
    where = getattr(ctx, "command_path", None) or "prefstyle"
    if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:
        names = []
        list_commands = getattr(ctx.command, "list_commands", None)
        if callable(list_commands):
            names = list(list_commands(ctx))
        what = f"a command is needed: {', '.join(names)}" if names else "arguments are needed"
        return f"{where}: error: {what} (see '{where} --help')"
    fmt = getattr(e, "format_message", None)
    msg = fmt() if callable(fmt) else str(e)
    msg = " ".join(str(msg).split())  # click's messages may span lines
    return f"{where}: error: {msg} (see '{where} --help')"


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user-input errors into one line on stderr.

    Exit status: 2 for a usage mistake or a :class:`PrefstyleError`, 1 for an abort or a system
    error (``OSError``: a full disk), else the command's own status.
    """
    usage_types = _usage_exception_types()
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
    except usage_types as e:
        print(usage_error_line(e), file=sys.stderr)
        code = getattr(e, "exit_code", 2)
        return code if isinstance(code, int) else 2
    except OSError as e:  # a full disk, an I/O error: the system's reason, on one line
        where = f"{e.filename}: " if e.filename else ""
        print(f"prefstyle: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
