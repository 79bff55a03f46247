"""What the ``usd``, ``upe`` and ``exemplar`` training tasks share: the data configuration, the
training bank and batches, and validation (each model's own task is in the module of its name).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from prefstyle.errors import PrefstyleError
from prefstyle.models.pps.backbone import FrozenBackbone
from prefstyle.train.task import TrainTask
from prefstyle.train.tasks.pps_bank import PairBank, PairBatch, PairBatchLoader
from prefstyle.train.tasks.pps_validate import load_truth, validate_personalization

if TYPE_CHECKING:
    from prefstyle.data.pairs import PairsDataset

__all__ = ["PPSTask", "unwrap"]

log = logging.getLogger(__name__)


class PPSTask(TrainTask):
    """Data handling shared by the ``usd``, ``upe`` and ``exemplar`` training tasks.

    ``data_cfg`` keys: ``path`` (a pairs dataset, required), ``split`` (the training split,
    default ``train``; a dataset without splits trains on every user not in ``val``/``test``),
    ``max_users`` (train on a seeded sample of this many training users: the training-users
    ablation; ``users_seed``), ``scene_split`` (train only on judgments of scenes of this scene
    split, e.g. ``train``, so that the photos of the other splits stay unseen: the
    held-out-photos protocol, ``prefstyle evaluate --eval-scenes test``; validation then scores
    pairs on scenes of ``val_scene_split``, default ``val``), ``kind`` (``main``), ``val_split`` (``val``), ``val_users`` (8),
    ``val_refs`` (16), ``val_evals`` (8), ``val_side`` (128 px), ``val_seed`` (0),
    ``val_without_refs`` (true: also score profiles made without references, ``*_norefs``),
    ``cache_dir`` (keep the bank of thumbnails/features there for later runs),
    ``quality_filter`` (true: train and validate only on the users who pass the PPS paper's
    participant filters, :mod:`prefstyle.data.filters`, as the paper does; false: the whole
    crowd; a mapping: :class:`~prefstyle.data.filters.FilterConfig` thresholds). The counts
    (kept/removed, per filter and split) go to the log and the model card (``data.filters``).

    Subclasses set ``bank_sizes()`` (thumbnail sizes), ``uses_backbone`` and ``n_context()``.
    """

    name = "pps"
    uses_backbone = False

    def __init__(self, model_cfg: Mapping[str, Any], data_cfg: Mapping[str, Any], seed: int = 0):
        self._init_pps(model_cfg, data_cfg, seed)

    def _init_pps(self, model_cfg: Mapping[str, Any], data_cfg: Mapping[str, Any], seed: int) -> None:
        self.model_cfg = {k: v for k, v in dict(model_cfg or {}).items() if k != "name"}
        self.data_cfg = dict(data_cfg or {})
        self.seed = int(seed)
        self._dataset: PairsDataset | None = None
        self._bank: PairBank | None = None
        self._truth: Any = False
        self._val_cache: dict[str, torch.Tensor] = {}
        self._filters: dict[str, Any] | None = None

    # -- dataset -----------------------------------------------------------------------------

    @property
    def dataset(self) -> PairsDataset:
        if self._dataset is None:
            from prefstyle.data.pairs import PairsDataset

            path = self.data_cfg.get("path")
            if not path:
                raise PrefstyleError(f"{self.name}: data.path (a pairs dataset folder) is required")
            ds = PairsDataset.load(path, check_images=False)
            from prefstyle.data.filters import apply_filter_setting, summary_line

            ds, self._filters = apply_filter_setting(
                ds, self.data_cfg.get("quality_filter", True), f"{self.name}: data.quality_filter"
            )
            if self._filters is not None:
                log.info("%s", summary_line(self._filters))
            self._dataset = ds
        return self._dataset

    def train_users(self) -> list[str]:
        ds = self.dataset
        split = self.data_cfg.get("split", "train")
        if ds.splits.get(split):
            users = sorted(set(ds.splits[split]))
        else:
            held = {u for name in ("val", "test") for u in ds.splits.get(name, [])}
            users = [u for u in ds.users() if u not in held]
        k = self.data_cfg.get("max_users")
        if k is not None and int(k) < len(users):
            rng = np.random.default_rng(int(self.data_cfg.get("users_seed", 0)))
            users = sorted(rng.choice(users, size=int(k), replace=False).tolist())
        if not users:
            raise PrefstyleError(f"{self.name}: no training users in {ds.root}")
        return users

    def train_scenes(self) -> set[str] | None:
        """The scenes training may use (``data.scene_split``), or None for all."""
        split = self.data_cfg.get("scene_split")
        return None if not split else self.dataset.scenes_of_split(str(split))

    def val_users(self) -> list[str]:
        ds = self.dataset
        users = sorted(set(ds.splits.get(self.data_cfg.get("val_split", "val"), [])))
        return users[: int(self.data_cfg.get("val_users", 8))]

    def bank_sizes(self) -> tuple[int, ...]:
        return (64,)

    def n_context(self) -> int | tuple[int, int]:
        return 0

    def backbone_module(self, model: nn.Module) -> FrozenBackbone | None:
        return getattr(model, "backbone", None)

    def bank(self, model: nn.Module | None = None) -> PairBank:
        """The training bank, built once (or read from ``data.cache_dir`` when a matching one is there)."""
        if self._bank is None:
            cache = self._bank_cache_file()
            if cache is not None and cache.is_file():
                self._bank = PairBank.load(cache, self.dataset)
                return self._bank
            backbone = self.backbone_module(model) if (self.uses_backbone and model is not None) else None
            if self.uses_backbone and backbone is None:
                backbone = FrozenBackbone(**self.backbone_kwargs())
            self._bank = PairBank(
                self.dataset,
                self.train_users(),
                sizes=self.bank_sizes(),
                backbone=backbone,
                kind=self.data_cfg.get("kind", "main"),
                progress=bool(self.data_cfg.get("progress", False)),
                scenes=self.train_scenes(),
            )
            if cache is not None:
                self._bank.save(cache)
        return self._bank

    def _bank_cache_file(self) -> Path | None:
        folder = self.data_cfg.get("cache_dir")
        if not folder:
            return None
        ds = self.dataset
        key = {
            "root": str(Path(ds.root).resolve()),
            "judgments": len(ds.judgments),
            "users": self.train_users(),
            "sizes": sorted(set(self.bank_sizes())),
            "kind": self.data_cfg.get("kind", "main"),
            "backbone": self.backbone_kwargs() if self.uses_backbone else None,
        }
        if self.data_cfg.get("scene_split"):
            key["scene_split"] = self.data_cfg["scene_split"]
        digest = hashlib.sha1(repr(sorted(key.items())).encode()).hexdigest()[:16]
        return Path(folder).expanduser() / f"pps_bank_{digest}.pt"

    def backbone_kwargs(self) -> dict[str, Any]:
        return {
            "name": self.model_cfg.get("backbone", "efficientnet_lite0"),
            "weights": self.model_cfg.get("backbone_weights"),
            "input_size": int(self.model_cfg.get("backbone_size", 224)),
            "stats": bool(self.model_cfg.get("backbone_stats", True)),
            **({"vit": self.model_cfg["backbone_vit"]} if self.model_cfg.get("backbone_vit") else {}),
        }

    def train_loader(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> PairBatchLoader:
        model = getattr(self, "_model", None)
        return PairBatchLoader(
            self.bank(model), batch_size, seed=seed, rank=rank, world_size=world_size, n_context=self.n_context()
        )

    def batch_to(self, batch: Any, device: torch.device) -> Any:
        return batch.to(device) if isinstance(batch, PairBatch) else batch

    def describe_data(self) -> dict[str, Any]:
        ds = self.dataset
        out = {
            "path": str(ds.root),
            "name": ds.meta.get("name"),
            "split": self.data_cfg.get("split", "train"),
            "train_users": len(self.train_users()),
            "max_users": self.data_cfg.get("max_users"),
            "scene_split": self.data_cfg.get("scene_split"),
            "val_users": len(self.val_users()),
            "kind": self.data_cfg.get("kind", "main"),
            "filters": self._filters if self._filters is not None else "off",
        }
        if self._bank is not None:
            out["bank"] = self._bank.describe()
        return out

    def validate(self, model: nn.Module) -> dict[str, float]:
        users = self.val_users()
        if not users:
            return {}
        if self._truth is False:
            self._truth = load_truth(self.dataset)
        inf = self.to_inference(model)
        return validate_personalization(
            inf,
            self.dataset,
            users,
            n_refs=int(self.data_cfg.get("val_refs", 16)),
            n_evals=int(self.data_cfg.get("val_evals", 8)),
            seed=int(self.data_cfg.get("val_seed", 0)),
            max_side=int(self.data_cfg.get("val_side", 128)),
            ground_truth=self._truth,
            cache=self._val_cache,
            without_refs=bool(self.data_cfg.get("val_without_refs", True)),
            # with a scene split, validate on the photos of the validation split (unseen in training)
            eval_scenes=self.dataset.scenes_of_split(str(self.data_cfg.get("val_scene_split", "val")))
            if self.data_cfg.get("scene_split")
            else None,
        )


def unwrap(model: nn.Module) -> Any:
    """The plain module inside a DistributedDataParallel wrapper (or the module itself)."""
    return getattr(model, "module", model)
