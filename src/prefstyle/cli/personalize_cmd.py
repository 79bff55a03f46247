"""`prefstyle personalize` and `prefstyle enhance` (docs/FORMATS.md, section 2), for any model.

::

    prefstyle personalize DATA --user USER [--refs 16] [--model NAME_OR_PATH] --out PROFILE
    prefstyle enhance INPUT... --profile PROFILE --out DIR [--model NAME_OR_PATH]

``personalize`` learns the user's taste from at most ``--refs`` of the user's ``main``
judgments in the pairs dataset DATA (in answer order, or a seeded sample with ``--seed``) and
writes a profile (``PROFILE.json`` + ``PROFILE.safetensors`` when the model stores tensors).
The profile records the model it was made with (name, or checkpoint folder, and the
checkpoint's id), so ``enhance`` needs no ``--model``; a ``--model`` that is not the one the
profile was made with is refused. With the default model (``looks``, or a path to a ``looks``
settings ``.json``) on the CPU, ``personalize`` runs without importing torch
(:mod:`prefstyle.models.look_personalize_np`: the same profile in about a third of the time; 16-bit
or otherwise converted images, other models and ``--liked`` take the model itself).

``enhance`` writes one output per input into DIR with the input's file name (folders are
searched recursively and their layout kept), at the input's full resolution, with its bit
depth, EXIF and ICC profile. Inputs in formats that cannot be written (BMP, RAW) are written as
PNG (TIFF for RAW). Unreadable files, and folders without a single image, are skipped with a
one-line reason (exit status 1 at the end); Ctrl-C stops the batch after the photos being
written (exit status 130; ``--skip-existing`` resumes it); an output that would overwrite its input is refused before anything is written. A profile
whose rendering is one LUT per photo (:mod:`prefstyle.models.lut_forms`) is applied to 8-bit
photos without importing torch when no ``--model``/``--full-render``/``--device`` is given
(about 600 MB of memory less; docs/BENCHMARKS.md, issue 19).

The lead registers them: ``app.command("personalize")(personalize)``,
``app.command("enhance")(enhance)``. Models are loaded with :func:`prefstyle.models.load`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from prefstyle.cli.batch_io import collect_inputs, enhance_file, enhance_file_torch_free, report_skipped
from prefstyle.errors import PrefstyleError
from prefstyle.models.defaults import DEFAULT_LIKED_MODEL, DEFAULT_MODEL

if TYPE_CHECKING:
    from prefstyle.data.pairs import Judgment, PairsDataset
    from prefstyle.imaging.decode import ImageData
    from prefstyle.models.base import PersonalizationModel, Profile
    from prefstyle.models.look_personalize_np import NpProfile
    from prefstyle.models.lut_forms import TorchFreeProfile
    from prefstyle.models.pienet_lut_np import NetworkLutProfile

__all__ = ["DEFAULT_MODEL", "enhance", "load_profile_and_model", "personalize", "profile_path"]


def _model_source(spec: str) -> str:
    """What a profile records as its model: an absolute path for paths, else the name."""
    from prefstyle.models.profile_file import looks_like_path

    return str(Path(spec).expanduser().resolve()) if looks_like_path(spec) else spec


def profile_path(out: Path) -> Path:
    """The ``.json`` a profile is written to for ``--out`` (a folder gets ``profile.json``)."""
    if out.is_dir() or str(out).endswith(("/", "\\")):
        return out / "profile.json"
    return out if out.suffix == ".json" else out.with_suffix(".json")


def personalize(
    data: Annotated[Path | None, typer.Argument(help="pairs dataset folder (docs/FORMATS.md)")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="profile file to write (.json; tensors go beside it)")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="the user to personalize for (person@device)")] = None,
    refs: Annotated[int, typer.Option("--refs", help="use at most this many of the user's main judgments")] = 16,
    liked: Annotated[
        Path | None,
        typer.Option(
            "--liked", help="a folder of photos the person likes, instead of DATA (PieNet's scheme; experimental)"
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help=f"registered model name or checkpoint path [default: {DEFAULT_MODEL}; "
            f"with --liked: {DEFAULT_LIKED_MODEL}]",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="pick the references by a seeded shuffle instead of answer order")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="torch device")] = "cpu",
    force: Annotated[bool, typer.Option("--force", help="replace an existing profile")] = False,
) -> None:
    """Learn USER's taste from their judgments in DATA (or from --liked photos) and write a profile for `enhance`."""
    if out is None:
        raise PrefstyleError("--out is required: the profile file to write")
    from prefstyle.cli.device import check_device
    from prefstyle.fsutil import check_writable

    check_device(device)

    target = profile_path(out)
    if not force and (target.exists() or target.with_suffix(".safetensors").exists()):
        raise PrefstyleError("a profile exists here (pass --force to replace it)", path=target)
    check_writable(target)
    if (data is None) == (liked is None):
        raise PrefstyleError("give either a pairs dataset DATA with --user, or --liked FOLDER")
    if refs < 0:
        raise PrefstyleError(f"--refs must be >= 0, got {refs}")
    spec = model or (DEFAULT_LIKED_MODEL if liked is not None else DEFAULT_MODEL)
    profile: Profile | NpProfile
    describe: Callable[[Any], str]  # the taste in the model's words
    loaded: PersonalizationModel | None = None  # the model, when it was loaded (torch)
    if liked is not None:
        who = user or liked.resolve().name
        # PieNet's embedding through ONNX Runtime when the cache has it for this checkpoint and every
        # photo is plain 8-bit RGB (models/pienet_personalize_np.py); otherwise the model itself.
        free_liked = _liked_torch_free(spec, liked, who) if device == "cpu" else None
        if free_liked is not None:
            profile = free_liked
            name, describe = profile.model, (lambda p: "")  # PieNet has no words for its taste
        else:
            from prefstyle.models.loading import load as load_model

            images = _liked_images(liked)
            m = load_model(spec, device=device)
            profile = m.personalize_liked(images, user=who)
            loaded = m
            name, describe = m.name, cast("Callable[[Any], str]", m.describe)
        what = f"{profile.data['n_liked']} liked photo(s)"
        typer.echo(
            "note: --liked is experimental: learning a taste from photos alone (PieNet's scheme 2, trained "
            "on simulated tastes) can make ordinary photos darker or duller than the input; check a few "
            "results, or answer pairwise questions instead (prefstyle serve)",
            err=True,
        )
        profile.data = {**profile.data, "liked": str(liked.resolve())}
    else:
        assert data is not None  # exactly one of DATA and --liked, checked above
        from prefstyle.data.pairs import PairsDataset

        if not user:
            raise PrefstyleError("--user is required with a pairs dataset")
        # Only this user's judgments are parsed and only their images checked, not the whole
        # crowd's (45,000 judgments: 1-2 s of JSON and stat calls; docs/BENCHMARKS.md, issue 19).
        ds = PairsDataset.load(data, check_images=False, users=[user])
        if not ds.users():  # an unknown user: the full read names the users there are
            ds = PairsDataset.load(data, check_images=False)
        judgments = ds.references(user, refs, seed=seed)
        if refs > 0 and not judgments:
            raise PrefstyleError(f"user {user!r} has no main judgments", path=data)
        _check_reference_files(ds, judgments)
        # The default model (looks) on the CPU without importing torch, when it can
        # (:mod:`prefstyle.models.look_personalize_np`; importing torch and kornia was most of
        # the command's time: docs/BENCHMARKS.md, issue 19); otherwise, silently, the model itself.
        free = _personalize_torch_free(spec, ds, judgments, user) if device == "cpu" else None
        if free is not None:
            profile, name, describe = free
            n_refs = int(profile.data["n_refs"])
        else:
            import torch

            from prefstyle.eval.protocol import load_references
            from prefstyle.models.loading import load as load_model

            # The pairs models' tensors are small (thumbnails, a few thousand particles): one torch
            # thread; OpenMP threads spin-waiting for each other on a busy machine made the same
            # command 3-4x slower in wall time (docs/BENCHMARKS.md, issue 19).
            torch.set_num_threads(1)
            m = load_model(spec, device=device)
            references = load_references(ds, judgments)
            profile = m.personalize(references, user=user)
            loaded = m
            name, describe, n_refs = m.name, cast("Callable[[Any], str]", m.describe), len(references)
        what = f"{n_refs} judgment(s)"
        if n_refs and profile.data.get("n_used") == 0:
            typer.echo(
                f"warning: {name} learns only from answers on scenes with a neutral source (scenes.jsonl "
                f"'source'); none of these has one, so the profile is the prior's (use --model with a model "
                f"that learns from the renditions themselves)",
                err=True,
            )
        profile.data = {**profile.data, "dataset": str(Path(data).resolve()), "n_references": n_refs}
    profile.model_config = {**profile.model_config, "source": _model_source(spec)}
    path = profile.save(profile_path(out))
    typer.echo(f"{name}: profile of {profile.user} from {what} written to {path}", err=True)
    if loaded is not None and device == "cpu":
        loaded.prepare_torch_free()  # so that `enhance` of this profile need not import torch
    words = describe(profile)  # the taste in the model's own words, when it has some
    if words:
        typer.echo(words, err=True)


def _personalize_torch_free(
    spec: str, ds: PairsDataset, judgments: list[Judgment], user: str
) -> tuple[NpProfile, str, Callable[[Any], str]] | None:
    """``(profile, model name, describe)`` made without torch when ``spec`` is a ``looks`` (the
    default model) or ``sliders`` settings checkpoint, or a PieNet checkpoint whose networks are
    cached, and every image is plain 8-bit RGB of one size per judgment; None otherwise (the caller
    then loads the model, which reads, converts and judges it all)."""
    from prefstyle.models import look_personalize_np as lp
    from prefstyle.models import slider_personalize_np as sp

    ckpt = lp.checkpoint_path(spec)
    space = lp.read_checkpoint(ckpt) if ckpt is not None else None
    sckpt = sp.checkpoint_path(spec) if space is None else None
    settings = sp.read_checkpoint(sckpt) if sckpt is not None else None
    if space is None and settings is None:
        from prefstyle.models import pienet_personalize_np as pp

        # a checkpoint whose networks are in the cache (PieNet; models/pienet_personalize_np.py)
        refs = lp.load_references(ds, judgments) if pp.cached(spec) else None
        free = pp.personalize_pairs(spec, refs, user) if refs else None
        return None if free is None else (free, free.model, lambda p: "")
    refs = lp.load_references(ds, judgments)
    if refs is None:
        return None
    if space is not None:
        return lp.personalize(space, refs, user=user), lp.MODEL_NAME, lambda p: lp.describe(p.data)
    assert settings is not None
    return sp.personalize(settings, refs, user=user), sp.MODEL_NAME, lambda p: sp.describe(p.data)


def _check_reference_files(ds: PairsDataset, judgments: list[Judgment]) -> None:
    """The images (and scene sources) of ``judgments`` exist and each pair is two files, else a
    one-line :class:`PrefstyleError` naming ``judgments.jsonl`` and the line."""
    import os

    from prefstyle.data.pairs import JUDGMENTS_FILE, SCENES_FILE

    jpath = ds.root / JUDGMENTS_FILE
    for j in judgments:
        where = f"line {j.line}: " if j.line is not None else ""
        files = [ds.image_path(j.image_a), ds.image_path(j.image_b)]
        for key, f in zip(("image_a", "image_b"), files, strict=True):
            if not f.is_file():
                raise PrefstyleError(f"{where}{key} {f.relative_to(ds.root)} does not exist", path=jpath)
        if os.path.samefile(files[0], files[1]):
            raise PrefstyleError(f"{where}image_a and image_b are the same file", path=jpath)
        sc = ds.scenes.get(j.scene)
        if sc is not None and sc.source and not ds.image_path(sc.source).is_file():
            raise PrefstyleError(f"scene {j.scene}: source {sc.source} does not exist", path=ds.root / SCENES_FILE)


def _liked_torch_free(spec: str, folder: Path, user: str) -> NpProfile | None:
    """The ``--liked`` profile made without torch (:func:`prefstyle.models.pienet_personalize_np.personalize_liked`),
    or None when the model must be loaded (another model, no cached networks, a photo it cannot read)."""
    from prefstyle.imaging.decode import list_images

    if not folder.is_dir():
        return None  # _liked_images says so
    photos = list_images([folder], recursive=True)[:LIKED_LIMIT]
    if not photos:
        return None
    from prefstyle.models.pienet_personalize_np import personalize_liked

    return personalize_liked(spec, photos, user)


#: at most this many photos of a --liked folder are read
LIKED_LIMIT = 500


def _liked_images(folder: Path, side: int = 512, limit: int = LIKED_LIMIT) -> list[Any]:
    """The photos in ``folder`` (recursively) as ``(3,h,w)`` tensors, long side at most ``side``.

    Unreadable files are skipped with a one-line note; no readable photo is an error.
    """
    from prefstyle.imaging.io import list_images, load_image
    from prefstyle.imaging.resize import resize_long_side

    if not folder.is_dir():
        raise PrefstyleError("--liked must be a folder of photos", path=folder)
    images = []
    for f in list_images([folder], recursive=True)[:limit]:
        try:
            x = load_image(f)
        except PrefstyleError as e:
            typer.echo(f"skipped {e}", err=True)
            continue
        images.append(resize_long_side(x, side, mode="area")[0].clamp(0, 1))
    if not images:
        raise PrefstyleError("no readable photos", path=folder)
    return images


def check_model_matches(model: PersonalizationModel, profile: Profile) -> None:
    """Refuse a profile made by another model (or another checkpoint of the same model)."""
    model.check_profile(profile)
    made = profile.model_config.get("checkpoint_id")
    have = model.config().get("checkpoint_id")
    if made is not None and have is not None and made != have:
        raise PrefstyleError(
            f"this profile was made by another '{profile.model}' checkpoint ({made}; this one is {have}); "
            "personalize again with this model"
        )


def load_profile_and_model(
    profile: Path, model: str | None = None, device: str = "cpu"
) -> tuple[Profile, PersonalizationModel]:
    """The profile at ``profile`` and the model to use it with (``model``, else the one that made it).

    A model other than the profile's (or another checkpoint of it) is refused.
    """
    from prefstyle.models.base import Profile
    from prefstyle.models.loading import load as load_model

    ppath = profile_path(profile) if profile.is_dir() else profile
    prof = Profile.load(ppath)
    spec = model or prof.model_config.get("source") or prof.model
    m = load_model(spec, device=device)
    try:
        check_model_matches(m, prof)  # another model, or another checkpoint of it (a copy of the same one is fine)
    except PrefstyleError as e:  # the model's own checks (values out of range) do not know the file
        if e.path is None:
            raise PrefstyleError(str(e), path=ppath) from None
        raise
    return prof, m


def torch_free_profile(profile: Path, model: str | None = None) -> TorchFreeProfile | None:
    """The profile read without torch when it has that form and no ``--model`` is given, else None."""
    from prefstyle.models.lut_forms import torch_free_lut_profile

    ppath = profile_path(profile) if profile.is_dir() else profile
    return torch_free_lut_profile(ppath, model)


def torch_free_enhance_form(profile: Path, model: str | None = None) -> TorchFreeProfile | NetworkLutProfile | None:
    """:func:`torch_free_profile`, or a profile whose network runs without torch (PieNet through ONNX)."""
    from prefstyle.models.lut_forms import torch_free_enhance_profile

    ppath = profile_path(profile) if profile.is_dir() else profile
    return torch_free_enhance_profile(ppath, model)


def enhance(
    inputs: Annotated[list[Path], typer.Argument(help="image files or folders (searched recursively)")],
    profile: Annotated[Path, typer.Option("--profile", help="profile written by `prefstyle personalize`")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder (same file names as the inputs)")],
    model: Annotated[
        str | None, typer.Option("--model", help="model name or checkpoint path [default: the profile's]")
    ] = None,
    quality: Annotated[int, typer.Option("--quality", min=1, max=100, help="JPEG quality")] = 95,
    strength: Annotated[
        float, typer.Option("--strength", min=0.0, max=1.0, help="1 = the full edit, 0 = the input unchanged")
    ] = 1.0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="images processed in parallel")] = 1,
    full_render: Annotated[
        bool,
        typer.Option(
            "--full-render",
            help="8-bit photos too go through the model's own full-resolution rendering instead of one 3D LUT "
            "per photo (PieNet: keeps its local edits; about 3x slower)",
        ),
    ] = False,
    device: Annotated[str, typer.Option("--device", help="torch device")] = "cpu",
    force: Annotated[bool, typer.Option("--force", help="overwrite outputs that already exist")] = False,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="keep outputs that already exist and do the rest (resume a batch)")
    ] = False,
    out_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="write every output as jpeg (8 bit), tif or png instead of the input's own format "
            "[default: the input's; camera raw: 16-bit tif]",
        ),
    ] = None,
) -> None:
    """Retouch INPUT images in the profile's taste, at full resolution, into --out.

    Existing outputs are an error unless --force (overwrite) or --skip-existing (keep them).
    8- and 16-bit inputs keep their bit depth, EXIF, ICC profile, alpha and grayscale. Unreadable files and
    folders without images are skipped and reported; the batch goes on, and the exit status is 1 if any was skipped.
    8-bit photos are rendered through one 3D LUT per photo where the model can give one;
    --full-render turns that off.
    """
    import os
    import threading

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from prefstyle.cli.device import check_device
    from prefstyle.cli.outputs import plan_outputs

    check_device(device)
    jobs_in, failed = collect_inputs(inputs)
    if out_format is not None:
        suffix = {"jpeg": ".jpg", "jpg": ".jpg", "tif": ".tif", "tiff": ".tif", "png": ".png"}.get(out_format.lower())
        if suffix is None:
            raise PrefstyleError(f"--format {out_format}: choose jpeg, tif or png")
        jobs_in = [(src, rel.with_suffix(suffix)) for src, rel in jobs_in]
    jobs_in, kept = plan_outputs(jobs_in, inputs, out, force=force, skip_existing=skip_existing)
    # A profile whose rendering is one LUT per photo made with numpy is read without torch (importing
    # torch alone makes the process about 600 MB resident; docs/BENCHMARKS.md, issue 19): 8-bit
    # photos then never import it, other photos load the model on first need.
    form = None if full_render or device != "cpu" else torch_free_enhance_form(profile, model)
    loaded: list[tuple[Profile, PersonalizationModel]] = []
    load_lock = threading.Lock()

    def profile_and_model() -> tuple[Profile, PersonalizationModel]:
        with load_lock:
            if not loaded:
                import torch

                torch.set_num_threads(1)
                loaded.append(load_profile_and_model(profile, model, device))
                if not full_render and device == "cpu":
                    loaded[0][1].prepare_torch_free()  # the next batch of this profile without torch
            return loaded[0]

    name = form.model if form is not None else profile_and_model()[1].name
    # One photo per job. torch runs on one thread: its work per 8-bit photo is small (metering a
    # thumbnail, building the photo's LUT), and OpenMP threads spin-waiting for each other on a
    # busy machine doubled the time of a 10-photo batch (docs/BENCHMARKS.md, issue 19). The
    # full-size LUT pass runs in Pillow (no GIL) in strips, the job's share of the cores; more
    # cores for the float path (16-bit photos, --full-render): --jobs.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // jobs)
    for p, reason in failed:
        typer.echo(f"skipped {p}: {reason}", err=True)
    if kept:
        typer.echo(f"kept {len(kept)} existing output(s) in {out} (--skip-existing)", err=True)

    def one(src_path: Path, rel: Path, data: ImageData | None = None) -> None:
        prof, m = profile_and_model()
        enhance_file(
            m,
            prof,
            src_path,
            out / rel,
            strength=strength,
            quality=quality,
            device=device,
            lut_path=not full_render,
            threads=threads,
            data=data,
        )

    def one_torch_free(src_path: Path, rel: Path) -> None:
        assert form is not None
        enhance_file_torch_free(
            form,
            src_path,
            out / rel,
            fallback=lambda data: one(src_path, rel, data),
            strength=strength,
            quality=quality,
            threads=threads,
        )

    n_ok = 0
    interrupted = False
    with (
        Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        ) as progress,
        ThreadPoolExecutor(jobs) as pool,
    ):
        task = progress.add_task(f"enhance ({name})", total=len(jobs_in))
        work = one if form is None else one_torch_free
        futures = {pool.submit(work, src_path, rel): src_path for src_path, rel in jobs_in}
        try:
            for fut in as_completed(futures):
                src_path = futures[fut]
                try:
                    fut.result()
                    n_ok += 1
                except (PrefstyleError, OSError, ValueError, MemoryError) as e:
                    report_skipped(progress.console, failed, src_path, e)
                progress.advance(task)
        except KeyboardInterrupt:
            # Ctrl-C: the photos not started are dropped, the ones being written finish (atomically).
            pool.shutdown(wait=False, cancel_futures=True)
            interrupted = True
    if interrupted:
        n_done = sum(1 for f in futures if f.done() and not f.cancelled() and f.exception() is None)
        typer.echo(
            f"interrupted: wrote {n_done} of {len(jobs_in)} image(s) to {out}; run the same command with "
            "--skip-existing to do the rest",
            err=True,
        )
        raise typer.Exit(130)
    typer.echo(f"{name}: wrote {n_ok} of {n_ok + len(failed)} image(s) to {out}", err=True)
    if failed:
        raise typer.Exit(1)
