"""``prefstyle serve``: run the study web app (participant pages, admin pages, export)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer


def serve(
    study: Annotated[
        list[Path] | None,
        typer.Option(
            "--study",
            help="A study YAML file (repeat for several). Without any, the studies already "
            "in the database are served, or a built-in demo study when it has none.",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL: sqlite:///FILE (default DATA/app.db) or postgresql://user@host/db."),
    ] = None,
    data: Annotated[
        Path, typer.Option("--data", help="Folder for rendered study images and participants' results.")
    ] = Path("prefstyle-app"),
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    admin_token: Annotated[
        str | None,
        typer.Option(
            "--admin-token",
            envvar="PREFSTYLE_ADMIN_TOKEN",
            show_envvar=True,
            help="Token for the /admin pages (default: generated once, kept in DATA/admin-token).",
        ),
    ] = None,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark cookies Secure (when served over HTTPS by a proxy).")
    ] = False,
    threads: Annotated[
        int, typer.Option("--torch-threads", min=1, help="CPU threads for rendering participants' styles.")
    ] = 1,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Server processes sharing the database (use PostgreSQL for more than one or two).",
        ),
    ] = 1,
    render_workers: Annotated[
        int,
        typer.Option(
            "--render-workers",
            min=1,
            max=32,
            help="Background processes rendering participants' styles, per server process.",
        ),
    ] = 1,
    render_queue: Annotated[
        int,
        typer.Option(
            "--render-queue",
            min=1,
            max=10_000,
            help="Render jobs that may wait per server process; more are answered 'busy, retrying'.",
        ),
    ] = 64,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            envvar="PREFSTYLE_FORWARDED_ALLOW_IPS",
            help="Trust X-Forwarded-Proto/Host/For from these proxy addresses (comma-separated IPs "
            "or CIDRs, '*' for any): resume links then use the public https:// address.",
        ),
    ] = "",
    adopt_data: Annotated[
        bool,
        typer.Option(
            "--adopt-data",
            help="When a study folder in DATA holds participants' files this database does not know, "
            "move them aside (kept, never served) and start the study afresh, instead of "
            "refusing to start.",
        ),
    ] = False,
) -> None:
    """Run the study web app: participants at /s/STUDY, organizers at /admin.

    Every answer is committed to the database before the next pair is served. Studies are YAML
    files (see docs/APP.md and configs/studies/); their images are rendered once, at the first start.
    """
    from prefstyle.app.server import run
    from prefstyle.app.state import AppSettings
    from prefstyle.app.study import load_study

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:  # read by torch when it is first imported (only when something needs rendering)
        os.environ["OMP_NUM_THREADS"] = str(threads)
    configs = [load_study(p) for p in (study or [])]
    settings = AppSettings(
        db_url=db or f"sqlite:///{(data / 'app.db').as_posix()}",
        data_dir=data,
        studies=configs,
        admin_token=admin_token,
        secure_cookies=secure_cookies,
        adopt_data=adopt_data,
        render_workers=render_workers,
        render_queue=render_queue,
        forwarded_allow_ips=forwarded_allow_ips,
    )
    run(settings, host=host, port=port, workers=workers)
