import subprocess
import sys

from prefstyle.cli import main


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "styles" in out and "lut" in out


def test_console_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "prefstyle", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Usage" in r.stdout
