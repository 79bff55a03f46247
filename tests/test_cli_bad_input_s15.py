"""The command line under bad input and Ctrl-C, found by a fresh audit (session 15): one-line
errors before any work, a non-zero exit for a folder without images, a batch that stops on
Ctrl-C, and a simulated crowd that is never left half-written."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prefstyle.cli import main
from prefstyle.imaging.lut import identity_lut
from prefstyle.imaging.lut_io import write_cube


def _err_lines(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and "━" not in ln]


def _photo(path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path, quality=90)


def _sliders_profile(path: Path) -> Path:
    from prefstyle.imaging.params import NEUTRAL
    from prefstyle.models.base import Profile

    vec = NEUTRAL.replace(temperature=0.8).to_vector()[None]
    prof = Profile(
        model="sliders",
        user="t",
        data={"sliders": {"temperature": 0.8, "adaptive_brightness": 0.0}},
        tensors={"vectors": vec, "gains": torch.zeros(1), "weights": torch.ones(1)},
    )
    return prof.save(path)


def test_export_preset_under_a_file_is_one_line_before_work(tmp_path, capsys):
    prof = _sliders_profile(tmp_path / "p.json")
    (tmp_path / "afile").write_text("x")
    rc = main(["export-preset", "--profile", str(prof), "--format", "pp3", "--out", str(tmp_path / "afile" / "s.pp3")])
    lines = _err_lines(capsys)
    assert rc == 2 and len(lines) == 1 and "afile" in lines[0], lines
    assert (tmp_path / "afile").read_text() == "x"


def test_evaluate_into_a_file_fails_before_evaluating(tmp_path, capsys):
    (tmp_path / "ds").mkdir()  # not read: the output is checked first
    (tmp_path / "afile").write_text("x")
    rc = main(["evaluate", str(tmp_path / "ds"), "-m", "looks", "--out", str(tmp_path / "afile")])
    lines = _err_lines(capsys)
    assert rc == 2 and lines == [f"prefstyle: error: {tmp_path / 'afile'}: exists and is not a folder"], lines


def test_lut_convert_refuses_a_size_out_of_range(tmp_path, capsys):
    write_cube(tmp_path / "a.cube", identity_lut(5), title="id")
    for size in ("1", "100000"):
        rc = main(["lut", "convert", str(tmp_path / "a.cube"), str(tmp_path / "b.cube"), "--size", size])
        lines = _err_lines(capsys)
        assert rc == 2 and len(lines) == 1 and "--size must be in 2..256" in lines[0], lines
    assert not (tmp_path / "b.cube").exists()


def test_a_folder_without_images_is_reported_and_exits_1(tmp_path, capsys):
    prof = _sliders_profile(tmp_path / "p.json")
    write_cube(tmp_path / "a.cube", identity_lut(5), title="id")
    (tmp_path / "empty").mkdir()
    (tmp_path / "heic").mkdir()
    (tmp_path / "heic" / "IMG_1.HEIC").write_bytes(b"\0" * 16)
    for folder in ("empty", "heic"):
        src = str(tmp_path / folder)
        for argv in (
            ["enhance", src, "--profile", str(prof), "--out", str(tmp_path / "o1")],
            ["lut", "apply", str(tmp_path / "a.cube"), src, "--out", str(tmp_path / "o2")],
        ):
            assert main(argv) == 1, argv
            skipped = [ln for ln in _err_lines(capsys) if ln.startswith("skipped")]
            assert skipped and skipped[0].startswith(f"skipped {src}: no images in this folder"), skipped
            if folder == "heic":
                assert "IMG_1.HEIC is not one" in skipped[0]


def test_ctrl_c_stops_an_enhance_batch_and_it_resumes(tmp_path, capsys, monkeypatch):
    import prefstyle.cli.personalize_cmd as pc

    prof = _sliders_profile(tmp_path / "p.json")
    for i in range(8):
        _photo(tmp_path / "in" / f"{i}.jpg", seed=i)
    calls: list[int] = []

    def interrupting(orig):
        def run(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt  # as Ctrl-C reaches the batch
            if len(calls) > 2:
                time.sleep(0.3)  # still running when the interrupt is seen: finishes, the rest does not start
            return orig(*args, **kwargs)

        return run

    monkeypatch.setattr(pc, "enhance_file", interrupting(pc.enhance_file))
    monkeypatch.setattr(pc, "enhance_file_torch_free", interrupting(pc.enhance_file_torch_free))
    out = tmp_path / "out"
    args = ["enhance", str(tmp_path / "in"), "--profile", str(prof), "--out", str(out)]
    assert main(args) == 130
    written = sorted(p.name for p in out.iterdir())
    assert len(written) < 4 and not any(n.startswith(".") for n in written), written
    assert any("interrupted" in ln and "--skip-existing" in ln for ln in _err_lines(capsys))
    monkeypatch.undo()
    assert main([*args, "--skip-existing"]) == 0
    assert len(list(out.iterdir())) == 8


def test_interrupted_simulate_leaves_the_output_as_it_was(tmp_path, capsys, monkeypatch):
    import prefstyle.data.simulate as sim

    def interrupted(cfg, out, progress=True, overwrite=False):
        Path(out, "images").mkdir(parents=True)
        Path(out, "judgments.jsonl").write_text("{")
        raise KeyboardInterrupt

    def finished(cfg, out, progress=True, overwrite=False):
        Path(out, "judgments.jsonl").write_text("new\n")
        return Path(out)

    crowd = tmp_path / "crowd"
    monkeypatch.setattr(sim, "simulate_dataset", interrupted)
    assert main(["data", "simulate", "--users", "2", "--out", str(crowd)]) == 130
    assert list(tmp_path.iterdir()) == []  # no partial folder to block the rerun
    monkeypatch.setattr(sim, "simulate_dataset", finished)
    assert main(["data", "simulate", "--users", "2", "--out", str(crowd)]) == 0
    assert (crowd / "judgments.jsonl").read_text() == "new\n"
    (crowd / "judgments.jsonl").write_text("old\n")
    monkeypatch.setattr(sim, "simulate_dataset", interrupted)
    assert main(["data", "simulate", "--users", "2", "--out", str(crowd), "--overwrite"]) == 130
    assert [p.name for p in tmp_path.iterdir()] == ["crowd"]
    assert (crowd / "judgments.jsonl").read_text() == "old\n"  # the dataset being replaced is kept
    (tmp_path / "afile").write_text("x")
    capsys.readouterr()
    assert main(["data", "simulate", "--users", "2", "--out", str(tmp_path / "afile")]) == 2
    assert len(_err_lines(capsys)) == 1


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    prof = _sliders_profile(tmp_path / "p.json")

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    out = tmp_path / "presets" / "s.xmp"
    assert main(["export-preset", "--profile", str(prof), "--format", "xmp", "--out", str(out)]) == 1
    lines = _err_lines(capsys)
    assert lines == [f"prefstyle: error: {out}: No space left on device"], lines
    assert list(out.parent.iterdir()) == []  # no partial file


def test_atomic_path_turns_a_rust_writers_system_error_into_oserror(tmp_path):
    from prefstyle.fsutil import atomic_path

    target = tmp_path / "t.safetensors"
    with pytest.raises(OSError) as info, atomic_path(target):
        raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_hald_image_is_one_line_that_says_what_is_wrong(tmp_path, capfd):
    hald = tmp_path / "h.png"
    assert main(["lut", "convert", str(_identity_cube(tmp_path)), str(hald), "--level", "4"]) == 0
    (tmp_path / "cut.png").write_bytes(hald.read_bytes()[:300])
    (tmp_path / "text.png").write_text("hello world")
    (tmp_path / "empty.png").write_bytes(b"")
    capfd.readouterr()
    for name, reason in (("cut", "truncated"), ("text", "unrecognised format"), ("empty", "empty file")):
        assert main(["lut", "convert", str(tmp_path / f"{name}.png"), str(tmp_path / f"{name}.cube")]) == 2
        lines = [ln for ln in capfd.readouterr().err.splitlines() if ln.strip()]  # OpenCV's own warnings too
        assert len(lines) == 1 and f"{name}.png" in lines[0] and reason in lines[0], lines


def _identity_cube(folder: Path) -> Path:
    write_cube(folder / "id.cube", identity_lut(16), title="id")
    return folder / "id.cube"


def test_a_device_that_is_not_there_is_one_line_before_work(tmp_path, capsys, monkeypatch):
    from prefstyle.cli.device import check_device
    from prefstyle.errors import PrefstyleError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    check_device("cpu")
    for device, reason in (
        ("cuda", "no CUDA GPU"),
        ("cuda:1", "no CUDA GPU"),
        ("meta", "choose cpu"),
        ("gpu", "choose"),
    ):
        with pytest.raises(PrefstyleError, match=reason):
            check_device(device)
    prof = _sliders_profile(tmp_path / "p.json")
    _photo(tmp_path / "in" / "a.jpg")
    capsys.readouterr()
    for argv in (
        ["enhance", str(tmp_path / "in"), "--profile", str(prof), "--out", str(tmp_path / "o"), "--device", "cuda"],
        ["styles", "apply", "warm-film", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--device", "nonsense"],
        ["personalize", str(tmp_path), "--user", "u", "--out", str(tmp_path / "q.json"), "--device", "cuda"],
    ):
        assert main(argv) == 2, argv
        lines = _err_lines(capsys)
        assert len(lines) == 1 and "--device" in lines[0], lines
    assert not (tmp_path / "o").exists() and not (tmp_path / "q.json").exists()


def test_a_negative_simulation_seed_is_a_usage_error(tmp_path, capsys):
    for argv in (["data", "simulate", "--seed", "-1"], ["demo", "--seed", "-1"]):
        assert main([*argv, "--out", str(tmp_path / "o")]) == 2
        lines = _err_lines(capsys)
        assert len(lines) == 1 and "--seed" in lines[0], lines
    assert not (tmp_path / "o").exists()


def test_a_long_file_name_can_be_written_atomically(tmp_path, capsys):
    prof = _sliders_profile(tmp_path / "p.json")
    name = "a" * 246 + ".jpg"  # 250 bytes: a valid name the temporary name must not push past 255
    _photo(tmp_path / "in" / name)
    assert main(["enhance", str(tmp_path / "in"), "--profile", str(prof), "--out", str(tmp_path / "o")]) == 0
    assert [p.name for p in (tmp_path / "o").iterdir()] == [name]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_in_a_photo_folder_is_passed_over_not_read(tmp_path):
    from prefstyle.imaging.decode import list_images

    _photo(tmp_path / "in" / "a.jpg")
    os.mkfifo(tmp_path / "in" / "b.jpg")  # reading it would block until someone writes
    assert [p.name for p in list_images([tmp_path / "in"])] == ["a.jpg"]


def test_a_dropped_exif_block_names_the_photo(tmp_path, caplog):
    prof = _sliders_profile(tmp_path / "p.json")
    exif = Image.Exif()
    exif[0x010E] = "x" * 70_000  # ImageDescription: more than one JPEG marker holds
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(tmp_path / "in" / "big.png", exif=exif.tobytes())
    argv = ["enhance", str(tmp_path / "in"), "--profile", str(prof), "--out", str(tmp_path / "o"), "--format", "jpeg"]
    with caplog.at_level("WARNING"):
        assert main(argv) == 0
    assert any(str(tmp_path / "o" / "big.jpg") in r.getMessage() and "EXIF" in r.getMessage() for r in caplog.records)


def test_a_profile_whose_json_cannot_be_written_leaves_no_tensors_and_keeps_the_old_one(tmp_path, monkeypatch):
    from prefstyle.models.base import Profile

    old = Profile(model="m", data={"v": 1}, tensors={"t": torch.zeros(3)})
    target = old.save(tmp_path / "p.json")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    new = Profile(model="m", data={"v": 2}, tensors={"t": torch.ones(3)})
    with pytest.raises(OSError):
        new.save(target)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # the old pair, nothing new
    with pytest.raises(OSError):
        new.save(tmp_path / "fresh.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "p.safetensors"]


@pytest.mark.parametrize("name", ["sample:-1", "camera:sample:-3", "sample:x"])
def test_a_sampled_style_with_a_negative_or_bad_seed_is_refused_in_one_line(name):
    from prefstyle.errors import PrefstyleError
    from prefstyle.styles.registry import get_style

    with pytest.raises(PrefstyleError, match="whole number >= 0"):
        get_style(name)
