"""What the network-backed PPS models share: a fingerprint of their weights recorded in every
profile, and the refusal of a profile made with other weights.
"""

from __future__ import annotations

import hashlib
from typing import Any

from torch import nn

from prefstyle.errors import PrefstyleError

__all__ = ["NetModelMixin", "weights_fingerprint"]


def weights_fingerprint(module: nn.Module) -> str:
    """A short hash of a module's parameters and buffers (profiles record the weights they were made with)."""
    h = hashlib.sha1()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        t = t.detach().float().flatten()
        if t.numel() > 4096:  # a strided sample keeps this cheap for big tensors
            t = t[:: max(1, t.numel() // 4096)]
        h.update(t.cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class NetModelMixin:
    """What the training-free PPS-style models share around their network ``self.net``.

    ``fingerprint`` (a hash of the weights, recorded in every profile), ``config()`` (name,
    ``net.arch`` and the fingerprint) and :meth:`check_weights`, which refuses a profile of this
    model made with other weights.
    """

    name: str
    net: Any  # the model's own network (declared with its type by each model)
    _fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.net)
        return self._fingerprint

    def config(self) -> dict[str, Any]:
        return {"name": self.name, **self.net.arch, "weights": self.fingerprint}

    def check_weights(self, profile: Any) -> None:
        """:meth:`check_profile`, then refuse a profile made with other weights of this model."""
        self.check_profile(profile)  # type: ignore[attr-defined]
        if profile.data.get("weights") not in (None, self.fingerprint):
            raise PrefstyleError(
                f"this {self.name} profile was made with other weights; personalize again with this model"
            )
