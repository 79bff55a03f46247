"""prefstyle: personalized photo retouching learned from pairwise preferences."""

import os as _os

__version__ = "0.1.0"

# torch's OpenMP threads spin while they wait for work. When another process holds a core, a
# two-thread torch on a two-core machine then spends most of its time spinning: LookTaste's
# personalization took 29 s instead of 0.45 s (docs/BENCHMARKS.md). Passive waiting removes that
# (0.66 s). Set before torch is first imported; a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
