"""Input collection and full-resolution rendering shared by the batch commands (`styles apply`, `enhance`).

* :func:`collect_inputs` / :func:`output_name` - the files a batch reads and the names it writes;
* :func:`report_skipped` - one input the batch could not do: recorded and printed in one line;
* :func:`enhance_file` - one photo of ``prefstyle enhance``: decode, render, encode. 8-bit
  photos stay uint8 end to end when the model gives a LUT (decode -> the photo's 3D LUT applied
  by Pillow's ``Color3DLUT`` -> encode, :func:`prefstyle.models.render.render_image_uint8`);
  others go through the float path (:func:`enhance_pixels`);
* :func:`enhance_file_torch_free` - the same for a profile read without torch
  (:func:`prefstyle.models.lut_forms.torch_free_lut_profile`): 8-bit photos through the photo's
  LUT made with numpy (:mod:`prefstyle.imaging.lut_np`), decoded and encoded by the same
  functions, so torch is never imported (about 600 MB resident less); other photos are handed
  to a fallback that renders them as :func:`enhance_file` does;
* :func:`enhance_pixels` - the retouched float pixels of a decoded image.

Nothing heavy is imported at module level (the command line's start-up stays fast).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

    from prefstyle.imaging.io import ImageData
    from prefstyle.models.base import PersonalizationModel, Profile
    from prefstyle.models.lut_forms import TorchFreeProfile
    from prefstyle.models.pienet_lut_np import NetworkLutProfile

__all__ = [  # noqa: F822
    "RAW_EXTENSIONS",
    "collect_inputs",
    "enhance_file",
    "enhance_file_torch_free",
    "enhance_pixels",
    "output_name",
    "report_skipped",
]


def __getattr__(name: str) -> Any:
    if name == "RAW_EXTENSIONS":  # camera raw inputs are written as 16-bit .tif
        from prefstyle.imaging.raw import RAW_EXTENSIONS

        return RAW_EXTENSIONS
    raise AttributeError(f"module 'prefstyle.cli.batch_io' has no attribute {name!r}")


def report_skipped(console: Any, failed: list[tuple[Path, str]], src: Path, error: BaseException) -> None:
    """Record in ``failed`` and print on the rich ``console`` the reason ``src`` was skipped: the
    error's own line when it names its file, else ``src`` and the error."""
    from prefstyle.errors import PrefstyleError

    reason = str(error) if isinstance(error, PrefstyleError) and error.path else f"{src}: {error}"
    failed.append((src, reason))
    console.print(f"skipped {reason}", style="yellow", markup=False, highlight=False, soft_wrap=True)


def output_name(rel: Path) -> Path:
    """The output path for an input at ``rel``: same name, or ``.tif`` (RAW) / ``.png`` (unwritable formats)."""
    from prefstyle.imaging.encode import WRITE_EXTENSIONS
    from prefstyle.imaging.raw import RAW_EXTENSIONS

    if rel.suffix.lower() in WRITE_EXTENSIONS:
        return rel
    return rel.with_suffix(".tif" if rel.suffix.lower() in RAW_EXTENSIONS else ".png")


def collect_inputs(inputs: list[Path]) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """(input file, path relative to the output folder) pairs, and inputs that do not exist or
    are folders without a single image (a wrong folder, or photos in a format not read), with why.

    Folders are searched recursively and their layout is kept.
    """
    from prefstyle.imaging.io import list_images

    jobs: list[tuple[Path, Path]] = []
    missing: list[tuple[Path, str]] = []
    for p in inputs:
        if p.is_dir():
            found = list_images([p], recursive=True)
            if not found:
                missing.append((p, _no_images_reason(p)))
            for f in found:
                jobs.append((f, output_name(f.relative_to(p))))
        elif p.exists():
            jobs.append((p, output_name(Path(p.name))))
        else:
            missing.append((p, "no such file or folder"))
    return jobs, missing


def _no_images_reason(folder: Path) -> str:
    """Why ``folder`` gave no inputs: nothing in it, or only files of types that are not read (one named)."""
    import os

    from prefstyle.imaging.decode import READ_EXTENSIONS

    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        other = next((n for n in sorted(files) if not n.startswith(".")), None)
        if other is not None:
            name = (Path(root) / other).relative_to(folder)
            kinds = " ".join(sorted(READ_EXTENSIONS))
            return f"no images in this folder ({name} is not one: read are {kinds} and camera raw files)"
    return "no images in this folder"


def enhance_pixels(
    model: PersonalizationModel,
    profile: Profile,
    data: ImageData,
    strength: float = 1.0,
    device: str = "cpu",
    lut_path: bool = True,
) -> torch.Tensor:
    """The retouched pixels ``(3,H,W)`` in [0,1] of a decoded image: :func:`prefstyle.models.render.render_image`
    (8-bit photos through the model's per-photo 3D LUT when it gives one, unless ``lut_path`` is False)."""
    from prefstyle.models.render import render_image

    return render_image(model, profile, data, strength=strength, lut_path=lut_path, device=device)


def enhance_file(
    model: PersonalizationModel,
    profile: Profile,
    src: Path,
    dst: Path,
    *,
    strength: float = 1.0,
    quality: int = 95,
    device: str = "cpu",
    lut_path: bool = True,
    threads: int | None = None,
    data: ImageData | None = None,
) -> None:
    """Retouch the photo at ``src`` into ``dst`` (full resolution, bit depth, EXIF, ICC, alpha kept).

    8-bit RGB photos of a model with a LUT stay uint8 from decoding to encoding (no float copy of
    the photo); ``threads``: strips the LUT is applied in (default: torch's thread count);
    ``data``: ``src`` already decoded (``read_image(src, keep_alpha=True)``).
    Raises :class:`~prefstyle.errors.PrefstyleError` for unreadable inputs and unwritable outputs.
    """
    import torch

    from prefstyle.imaging.io import read_image, write_like
    from prefstyle.models.render import render_image, render_image_pil, render_image_uint8

    if data is None:
        data = read_image(src, keep_alpha=True)
    y = None
    if lut_path and torch.device(device).type == "cpu" and data.rgb8 is not None:
        if dst.suffix.lower() in (".jpg", ".jpeg", ".jpe", ".webp"):  # Pillow encodes its own image as it is
            y = render_image_pil(model, profile, data, strength, threads=threads)
        else:
            y = render_image_uint8(model, profile, data, strength, threads=threads)
    if y is None:
        with torch.inference_mode():
            y = render_image(model, profile, data, strength=strength, lut_path=lut_path, device=device)
    write_like(dst, y, data, quality=quality)


def enhance_file_torch_free(
    form: TorchFreeProfile | NetworkLutProfile,
    src: Path,
    dst: Path,
    *,
    fallback: Callable[[ImageData], None],
    strength: float = 1.0,
    quality: int = 95,
    threads: int = 1,
) -> None:
    """:func:`enhance_file` for a profile read without torch: the photo at ``src`` into ``dst``.

    A plain 8-bit RGB photo (``ImageData.rgb8``) goes through ``form``'s LUT for it (numpy) by
    Pillow's ``Color3DLUT`` in ``threads`` strips, and is written by the same encoder as
    :func:`enhance_file`'s LUT path, so the file is that path's (the LUT agrees to float32
    rounding). Any other photo (16-bit, alpha, gray, raw), and any photo whose LUT needs a cached
    network ONNX Runtime cannot run, is given, decoded, to ``fallback``.
    """
    import numpy as np

    from prefstyle.imaging.decode import read_image
    from prefstyle.imaging.encode import write_like
    from prefstyle.imaging.lut_np import lut_filtered_image

    data = read_image(src, keep_alpha=True)
    if data.rgb8 is None:
        fallback(data)
        return
    from prefstyle.models.pienet_lut_np import NetworkUnavailable

    try:
        lut = form.photo_lut(data.rgb8, strength)
    except NetworkUnavailable:  # a cached network ONNX Runtime cannot run: the model renders it
        fallback(data)
        return
    img = lut_filtered_image(data.rgb8, lut, threads)
    if dst.suffix.lower() in (".jpg", ".jpeg", ".jpe", ".webp"):  # Pillow encodes its own image as it is
        write_like(dst, img, data, quality=quality)
    else:
        write_like(dst, np.asarray(img), data, quality=quality)
