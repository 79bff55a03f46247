"""Small filesystem helpers: atomic writes so a user's file is never half-written.

Files written here get the permissions any program would give a new file (``0o666`` less the
process umask: 0644 under the usual umask 022), not the 0600 of the temporary file they are
written through, unless a caller asks for another ``mode`` (a secret: ``0o600``).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_write_text",
    "cache_root",
    "check_writable",
    "current_umask",
    "default_file_mode",
    "load_safetensors",
]


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux ``/proc``)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode a newly created file gets: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def cache_root() -> Path:
    """Where prefstyle caches what it can rebuild (thumbnails, exported networks): ``$PREFSTYLE_CACHE``,
    default ``~/.cache/prefstyle``. Deleting it loses nothing but time."""
    root = os.environ.get("PREFSTYLE_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "prefstyle"


@contextlib.contextmanager
def atomic_path(path: str | Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the suffix of ``path`` so that writers which pick a format by
    extension (Pillow, tifffile) still work. The result gets ``mode``, by default
    :func:`default_file_mode` (``mkstemp`` would leave it 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The stem is cut short: a name near the 255-byte limit must still leave room for the temporary one.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:40]}.", suffix=f"{path.suffix}.part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, default_file_mode() if mode is None else mode)
        os.replace(tmp_path, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)  # a full disk or an I/O error names the file being written
        code = re.search(r"\(os error (\d+)\)", str(e)) if not isinstance(e, OSError) else None
        if code is not None:  # a writer in Rust (safetensors) wraps the system's error in its own type
            raise OSError(int(code[1]), os.strerror(int(code[1])), str(path)) from e
        raise


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8", mode: int | None = None) -> None:
    """Write ``text`` to ``path`` atomically (file mode as in :func:`atomic_path`)."""
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_text(text, encoding=encoding)


def check_writable(path: str | Path, folder: bool = False) -> None:
    """Refuse, before any work is done, a ``path`` that cannot be written.

    ``path`` is a file to be written (its folder must allow creating files, and an existing
    file must not be a folder) or, with ``folder``, a folder to write files into. Folders
    that do not exist yet count as writable when their nearest existing ancestor is. Raises
    :class:`~prefstyle.errors.PrefstyleError` naming the path and the reason; nothing is
    created.
    """
    from prefstyle.errors import PrefstyleError

    p = Path(path).expanduser()
    if folder:
        if p.exists() and not p.is_dir():
            raise PrefstyleError("exists and is not a folder", path=p)
        where = p
    else:
        if p.is_dir():
            raise PrefstyleError("is a folder; expected a file name", path=p)
        where = p.parent
    probe = where
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise PrefstyleError(f"cannot create a folder here: {probe} is a file", path=where)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PrefstyleError(f"cannot write here: {probe} is read-only or not yours", path=p)


def load_safetensors(path: str | Path, what: str = "weights") -> dict:
    """``safetensors.torch.load_file(path)``, with a one-line
    :class:`~prefstyle.errors.PrefstyleError` naming the file when it is missing, truncated or
    not a safetensors file at all (safetensors raises its own, unhelpful error type)."""
    from safetensors.torch import load_file

    from prefstyle.errors import PrefstyleError

    p = Path(path)
    if not p.is_file():
        raise PrefstyleError(f"{what} missing", path=p)
    try:
        return load_file(str(p))
    except Exception as e:  # noqa: BLE001 - SafetensorError (header), OSError, or a torch error on a damaged body
        msg = " ".join(str(e).split())[:200] or type(e).__name__
        raise PrefstyleError(f"{what} unreadable (truncated or not a safetensors file: {msg})", path=p) from None
