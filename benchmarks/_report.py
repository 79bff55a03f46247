"""What every benchmark script does with its result: print it and, with ``--out``, write it as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def emit(result: dict[str, Any], out: str | Path | None, indent: int = 1, shown: dict[str, Any] | None = None) -> None:
    """Print ``shown`` (default: ``result``) as JSON and write ``result`` to ``out`` (folders made;
    written to a temporary name, then renamed, so an interrupted run leaves the old file)."""
    print(json.dumps(result if shown is None else shown, indent=indent))
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(result, indent=indent) + "\n")
        os.replace(tmp, path)
