"""Evaluation: the PPS protocol (CQS, reference points, ablations), PieNet's protocols, the HTML report.

* :mod:`.protocol` — :func:`evaluate_pps`, :func:`ablate_n_refs`, :func:`ablate_training_users`,
  :class:`Results` (``results.json``).
* :mod:`.report` — :func:`write_report` (``index.html`` + images).
* :mod:`.pienet_protocols` — FiveK single-/multi-user and the expanded protocol.

See ``docs/EVALUATION.md``.
"""

from prefstyle.eval.protocol import (
    Results,
    ablate_n_refs,
    ablate_training_users,
    evaluate_pps,
    load_references,
)
from prefstyle.eval.report import write_report

__all__ = ["Results", "ablate_n_refs", "ablate_training_users", "evaluate_pps", "load_references", "write_report"]
