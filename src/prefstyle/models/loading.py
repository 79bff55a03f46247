"""``load(name_or_path)``: the one way from a model's name or checkpoint to a usable model.

Every caller (CLI, evaluation, the study app, benchmarks) gets its model here, in the
manner of timm's ``create_model``::

    from prefstyle.models import load, DEFAULT_MODEL
    model = load(DEFAULT_MODEL)            # packaged weights or fitted settings
    model = load("runs/pienet")            # a training run folder, model.json or model.safetensors
    model = load("runs/sliders/sliders.json")   # a settings checkpoint (profile format, no weights)
    model = load("identity")               # any registered model

Trained models declare here how their network is rebuilt from a checkpoint's card
(:func:`register_architecture`: the card's ``task.model`` options -> module, module -> model), so
loading never needs the training package. Models fitted in closed form (no gradient steps)
declare their fit (:func:`register_fit_without_gradients`), which ``prefstyle train`` calls
instead of its trainer. Models that need the evaluated data itself (reference points fitted on
the training users or reading the simulator's ground truth) declare a factory
(:func:`register_data_factory`) that :func:`load_for_data` calls with a :class:`DataContext`.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from prefstyle.errors import PrefstyleError
from prefstyle.models.base import PROFILE_FORMAT, PersonalizationModel, _load_builtin_models, create_model
from prefstyle.models.card import read_card
from prefstyle.models.defaults import DEFAULT_LIKED_MODEL, DEFAULT_MODEL
from prefstyle.models.profile_file import assets_dir, looks_like_path

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "DEFAULT_LIKED_MODEL",
    "DEFAULT_MODEL",
    "Architecture",
    "DataContext",
    "NotApplicable",
    "architecture",
    "assets_dir",
    "fit_without_gradients",
    "is_settings_file",
    "load",
    "load_for_data",
    "looks_like_path",
    "model_from_checkpoint",
    "packaged_models",
    "register_architecture",
    "register_data_factory",
    "register_fit_without_gradients",
    "settings_checkpoint",
]

# --------------------------------------------------------------------------------------------
# declarations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    """How a trained model comes back from its checkpoint.

    build: the card's ``task.model`` options -> the untrained module (no data, no
    pretrained-weight files read; the checkpoint's weights are loaded into it strictly).
    to_model: (module with weights, options) -> the :class:`PersonalizationModel`.
    needs_training: False for models that work (badly) untrained; ``load(name)`` then gives an
    untrained one with a warning instead of refusing.
    """

    build: Callable[[dict[str, Any]], nn.Module]
    to_model: Callable[[nn.Module, dict[str, Any]], PersonalizationModel]
    needs_training: bool = True


_ARCHITECTURES: dict[str, Architecture] = {}

FitFn = Callable[[dict[str, Any], bool], tuple[Path, dict[str, Any]]]
_FITS: dict[str, FitFn] = {}


def register_architecture(
    name: str,
    build: Callable[[dict[str, Any]], nn.Module],
    to_model: Callable[[nn.Module, dict[str, Any]], PersonalizationModel],
    needs_training: bool = True,
) -> None:
    """Declare how checkpoints whose card names task ``name`` are rebuilt (see :class:`Architecture`)."""
    _ARCHITECTURES[name] = Architecture(build, to_model, needs_training)


def architecture(name: str, module: str | None = None) -> Architecture | None:
    """The architecture registered as ``name`` (built-in models first; ``module``: an extra module to
    import, a config's ``task.module`` for models defined outside prefstyle), or None."""
    if name not in _ARCHITECTURES:
        _load_builtin_models()
    if name not in _ARCHITECTURES and module:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise PrefstyleError(f"cannot import the module {module!r} that defines '{name}': {e}") from None
    return _ARCHITECTURES.get(name)


def register_fit_without_gradients(name: str, fit: FitFn) -> None:
    """Declare that model ``name`` is trained by ``fit(config, progress) -> (path, summary)``, a
    closed-form fit that writes a settings checkpoint, instead of the gradient-descent trainer."""
    _FITS[name] = fit


def fit_without_gradients(name: str) -> FitFn | None:
    """The closed-form fit declared for ``name`` (see :func:`register_fit_without_gradients`), or None."""
    if name not in _FITS:
        _load_builtin_models()
    return _FITS.get(name)


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def packaged_models() -> list[str]:
    """Names of the models whose trained weights (or fitted settings) ship with prefstyle, sorted."""
    root = assets_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "model.json").is_file() or (p / f"{p.name}.json").is_file())


def _settings_doc(path: Path) -> dict[str, Any] | None:
    if path.suffix != ".json" or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != PROFILE_FORMAT or not isinstance(doc.get("model"), str):
        return None
    return doc


def is_settings_file(path: str | Path) -> bool:
    """Whether ``path`` is a settings checkpoint (a profile-format ``.json`` naming a model; no weights)."""
    return _settings_doc(Path(path)) is not None


def settings_checkpoint(path: Path) -> PersonalizationModel | None:
    """The model of a profile-format ``.json`` checkpoint (fitted settings, no weights: what
    ``prefstyle train`` writes for closed-form models), or None when ``path`` is not one."""
    doc = _settings_doc(path)
    if doc is None:
        return None
    try:
        return _create_lazily(doc["model"], checkpoint=path)
    except TypeError:
        raise PrefstyleError(f"model '{doc['model']}' cannot be loaded from a checkpoint file", path=path) from None


_REGISTERED_AS = re.compile(r"""^@register_model\(\s*["']([^"']+)["']\s*\)""", re.MULTILINE)


@functools.lru_cache(maxsize=1)
def _declaring_modules() -> dict[str, str]:
    """Registered model name -> the ``prefstyle.models`` module whose ``@register_model("name")``
    declares it, read from the sources (a few ms) so that one model can be imported alone."""
    out: dict[str, str] = {}
    for f in sorted(Path(__file__).resolve().parent.glob("*.py")):
        try:
            text = f.read_text(encoding="utf-8")
        except OSError:
            continue
        for name in _REGISTERED_AS.findall(text):
            out.setdefault(name, f"prefstyle.models.{f.stem}")
    return out


def _create_lazily(name: str, **kwargs: Any) -> PersonalizationModel:
    """:func:`~prefstyle.models.base.create_model`, importing only the module that declares ``name``
    when it is known (the command line then loads nothing the model does not need); otherwise
    every built-in model module, as ``create_model`` does."""
    from prefstyle.models.base import _REGISTRY

    module = _declaring_modules().get(name)
    if module is not None and name not in _REGISTRY:
        importlib.import_module(module)
    factory = _REGISTRY.get(name)
    return factory(**kwargs) if factory is not None else create_model(name, **kwargs)


def model_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> PersonalizationModel:
    """Rebuild the model a checkpoint (folder, ``model.json`` or ``model.safetensors``) holds.

    The architecture registered under the card's ``task.name`` rebuilds the module from the
    card's ``task.model`` options, the weights are loaded strictly (float16 ones cast back to
    float32). The returned model carries ``card`` (the JSON card), ``checkpoint_path`` and ``weights_path``.
    """
    from prefstyle.fsutil import load_safetensors

    card, weights = read_card(path)
    task: dict[str, Any] = card["task"] if isinstance(card.get("task"), dict) else {}
    name = str(task.get("name", ""))
    train = card.get("train") if isinstance(card.get("train"), dict) else {}
    extra = (train.get("task") or {}).get("module") if isinstance(train.get("task"), dict) else None
    arch = architecture(name, extra)
    if arch is None:
        raise PrefstyleError(
            f"checkpoint of model '{name}', which no installed module declares an architecture for",
            path=weights.with_suffix(".json"),
        )
    opts = dict(task.get("model") or {})
    module = arch.build(opts)
    try:
        module.load_state_dict(load_safetensors(weights, "checkpoint weights"), strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "mismatch"
        raise PrefstyleError(
            f"checkpoint weights do not fit the '{name}' architecture ({first})", path=weights
        ) from None
    module.to(device).eval()
    model = arch.to_model(module, opts)
    try:
        model.card = card  # type: ignore[attr-defined]
        model.checkpoint_path = str(weights.parent.resolve())  # type: ignore[attr-defined]
        model.weights_path = weights  # type: ignore[attr-defined]
    except AttributeError:  # models with __slots__
        pass
    return model


def load(name_or_path: str | Path, device: str | torch.device = "cpu") -> PersonalizationModel:
    """A :class:`~prefstyle.models.base.PersonalizationModel` from a checkpoint path or a registered name.

    * a path (folder with ``model.json``, a run folder, the card/weights file, or a settings
      ``.json``): that model;
    * a registered name with packaged weights under ``src/prefstyle/assets/models/<name>/``
      (``model.json``, or fitted settings ``<name>.json``): those;
    * a trainable model's name without packaged weights: an error that says how to train it
      (or, when its architecture works untrained, the untrained model with a warning);
    * any other registered model name (``identity``, ...): that model.
    """
    s = str(name_or_path)
    if isinstance(name_or_path, Path) or looks_like_path(s):
        small = settings_checkpoint(Path(s))
        return small if small is not None else model_from_checkpoint(s, device)
    packaged = assets_dir() / s
    if (packaged / "model.json").is_file():
        return model_from_checkpoint(packaged, device)
    if (packaged / f"{s}.json").is_file():
        small = settings_checkpoint(packaged / f"{s}.json")
        if small is not None:
            return small
    arch = architecture(s)
    if arch is not None:
        if arch.needs_training:
            raise PrefstyleError(
                f"model '{s}' needs training and no trained weights ship with prefstyle: train it with "
                f"`prefstyle train configs/{s}.yaml` (or a config of yours) and pass the run folder as --model"
            )
        warnings.warn(f"model '{s}' has no trained weights: using it untrained", stacklevel=2)
        return arch.to_model(arch.build({}).to(device).eval(), {})
    return create_model(s)


# --------------------------------------------------------------------------------------------
# models that need the evaluated data
# --------------------------------------------------------------------------------------------


class NotApplicable(PrefstyleError):
    """A model cannot run on this data (e.g. it needs a simulated dataset's ground truth)."""


@dataclass
class DataContext:
    """What an evaluation offers the models that need its data.

    dataset: the :class:`~prefstyle.data.pairs.PairsDataset`; eval_users: the users scored (a
    model fitted on training users must not see them); ground_truth: the simulated dataset's
    ``ground_truth.json`` folder, or None; options: settings of such models (e.g. ``particles``,
    ``global_steps``).
    """

    dataset: Any
    eval_users: list[str]
    ground_truth: Path | None = None
    seed: int = 0
    progress: bool = True
    options: dict[str, Any] = field(default_factory=dict)

    def training_users(self) -> list[str]:
        """The dataset's ``train`` split (else every user) without the evaluated users."""
        held = set(self.eval_users)
        train = self.dataset.splits.get("train")
        if train:
            return sorted(set(train) - held)
        return [u for u in self.dataset.users() if u not in held]


DataFactory = Callable[[DataContext], PersonalizationModel]
_DATA_FACTORIES: dict[str, DataFactory] = {}


def register_data_factory(name: str, factory: DataFactory) -> None:
    """Declare that model ``name`` is built from the evaluated data by ``factory(context)``, which
    raises :class:`NotApplicable` when the data cannot support it."""
    _DATA_FACTORIES[name] = factory


def load_for_data(spec: str | Path, context: DataContext, device: str | torch.device = "cpu") -> PersonalizationModel:
    """:func:`load`, except that models declaring a data factory are built from ``context``."""
    _load_builtin_models()
    factory = _DATA_FACTORIES.get(str(spec)) if not isinstance(spec, Path) else None
    if factory is not None:
        return factory(context)
    return load(spec, device)
