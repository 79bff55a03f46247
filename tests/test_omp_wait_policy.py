"""prefstyle sets OpenMP's passive wait policy before torch loads, unless the user chose one."""

import os
import subprocess
import sys


def _policy(env: dict[str, str]) -> str:
    code = "import prefstyle, os; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_passive_by_default_and_the_users_choice_kept():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy(env) == "PASSIVE"
    assert _policy({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
