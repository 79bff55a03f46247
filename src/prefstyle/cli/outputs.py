"""Where batch commands (`enhance`, `styles apply`, `lut apply`) write, and what they may overwrite.

The rules, checked before any image is read:

* ``--out`` is a folder, not inside (or equal to) an input folder: its outputs would otherwise
  become inputs of the next run.
* An output never replaces its own input, and two inputs never map to the same output
  (the same camera file name in two folders): the clashes are listed and nothing is written.
* An output file that already exists is replaced only with ``--force``; with
  ``--skip-existing`` it is kept and its input skipped (outputs are written atomically, so a
  present file is complete: re-running a stopped batch with ``--skip-existing`` finishes it).
  Without either flag, existing outputs are an error that lists them.
* The output folder must be writable.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from prefstyle.errors import PrefstyleError
from prefstyle.fsutil import check_writable

__all__ = ["plan_outputs"]

_LIST = 5  # name at most this many examples in one error line


def _examples(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST])
    return shown + (f", ... ({len(items) - _LIST} more)" if len(items) > _LIST else "")


def plan_outputs(
    jobs: list[tuple[Path, Path]],
    inputs: list[Path],
    out: Path,
    *,
    force: bool = False,
    skip_existing: bool = False,
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """The ``(input, output path relative to out)`` jobs to run, and the existing outputs skipped.

    ``jobs`` come from :func:`prefstyle.cli.batch_io.collect_inputs` over the command's
    ``inputs``. Raises :class:`PrefstyleError` for every rule of the module docstring.
    """
    if force and skip_existing:
        raise PrefstyleError("--force and --skip-existing exclude each other: overwrite, or keep what exists")
    if out.exists() and not out.is_dir():
        raise PrefstyleError("--out must be a folder", path=out)
    out_res = out.expanduser().resolve()
    for p in inputs:
        if p.is_dir():
            p_res = p.resolve()
            if out_res == p_res or p_res in out_res.parents:
                raise PrefstyleError(
                    f"--out {out} is inside the input folder {p}: its outputs would be read as "
                    "inputs next time; choose an output folder outside the inputs"
                )
    by_dst: dict[Path, list[Path]] = defaultdict(list)
    for src, rel in jobs:
        dst = (out_res / rel).resolve()
        if dst == src.resolve():
            raise PrefstyleError(
                f"refusing to overwrite the input {src} with its retouched version; choose another --out folder"
            )
        by_dst[dst].append(src)
    clashes = [f"{dst} <- {' + '.join(str(s) for s in srcs)}" for dst, srcs in by_dst.items() if len(srcs) > 1]
    if clashes:
        raise PrefstyleError(
            f"{len(clashes)} output file(s) would each be written from several inputs (same file "
            f"name in different folders?): {_examples(clashes)}; give those inputs separately "
            "with different --out folders"
        )
    existing = [(src, rel) for src, rel in jobs if (out_res / rel).exists()]
    if existing and not (force or skip_existing):
        names = [str(rel) for _, rel in existing]
        raise PrefstyleError(
            f"{len(existing)} output(s) already exist in {out}: {_examples(names)}; pass --force "
            "to overwrite them, or --skip-existing to keep them and do the rest"
        )
    check_writable(out, folder=True)
    if skip_existing and existing:
        done = {rel for _, rel in existing}
        return [(src, rel) for src, rel in jobs if rel not in done], [out / rel for _, rel in existing]
    return list(jobs), []
