"""The one small interface every personalization model answers, and the model registry.

A model learns a user from *references* and renders images for that user:

* :meth:`PersonalizationModel.personalize` takes a user's reference judgments (each a pair of
  renditions of one scene, which one the user preferred, and the scene's neutral source when
  the dataset has one) and returns a :class:`Profile`: a small, serializable description of
  the user's taste (JSON + optional tensors, saved as ``profile.json`` + ``profile.safetensors``).
* :meth:`PersonalizationModel.render` takes images ``(B,3,H,W)`` (sRGB, [0,1]) and a profile
  and returns the retouched images, same shape, in [0,1]. Any resolution: models look at a
  thumbnail and apply a colour transform to the full image.

Evaluation, the CLI and the web app use only this interface, so they never special-case a
model. Reference points (identity, oracle, ...) are models too.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from prefstyle.errors import PrefstyleError
from prefstyle.imaging.params import RetouchParams
from prefstyle.models.profile_file import PROFILE_FORMAT, PROFILE_VERSION, write_profile


@dataclass
class Reference:
    """One reference judgment with its images loaded.

    preferred, other: ``(3,H,W)`` sRGB [0,1] renditions of one scene; the user chose ``preferred``.
    source: ``(3,H,W)`` the scene's neutral rendition, or None when the dataset has none.
    key: optional, hashable; names the three images. References with equal keys must hold the
    same images (in the same roles), so a model may keep per-reference work under the key, e.g.
    across the many rankings of active sampling, which ask about the same renditions again and
    again. None: nothing is cached.
    """

    scene: str
    preferred: torch.Tensor
    other: torch.Tensor
    source: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    key: Hashable | None = None


@dataclass
class Profile:
    """A user's taste as learned by one model: JSON-able ``data`` plus named ``tensors``."""

    model: str
    data: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    user: str | None = None
    model_config: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (a ``.json`` file; tensors go beside it as ``<stem>.safetensors``). Atomic.

        A profile holding NaN or infinite numbers (a model that went wrong) is refused, never written.
        """
        from safetensors.torch import save_file

        tensors = {k: v.detach().contiguous().cpu() for k, v in self.tensors.items()}
        return write_profile(
            path,
            self.model,
            self.model_config,
            self.user,
            self.data,
            [(k, not v.is_floating_point() or bool(torch.isfinite(v).all())) for k, v in tensors.items()],
            lambda tmp: save_file(tensors, str(tmp)),
        )

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        """Read a profile written by :meth:`save`; one-line errors name the file.

        Refused: malformed JSON, NaN/infinite numbers anywhere (JSON or tensors), no ``"model"``,
        fields of the wrong type, missing, truncated or garbage tensors. Whether the values make
        sense for the model is the model's :meth:`PersonalizationModel.check_profile`.
        """
        from safetensors.torch import load_file

        path = Path(path)
        if path.is_dir():
            path = path / "profile.json"
        if not path.is_file():
            raise PrefstyleError("profile not found", path=path)

        def finite(text: str) -> float:
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"the number {text} is out of range")
            return value

        def no_constant(name: str) -> float:
            raise ValueError(f"{name} is not a number")

        try:
            doc = json.loads(path.read_text(encoding="utf-8"), parse_float=finite, parse_constant=no_constant)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PrefstyleError(f"not a profile (malformed JSON: {e})", path=path) from None
        except ValueError as e:
            raise PrefstyleError(f"profile holds a value that is not a finite number ({e})", path=path) from None
        except OSError as e:
            raise PrefstyleError(f"cannot read the profile: {e.strerror or e}", path=path) from None
        if not isinstance(doc, dict) or doc.get("format") != PROFILE_FORMAT:
            raise PrefstyleError("not a prefstyle profile", path=path)
        if doc.get("version") != PROFILE_VERSION:
            raise PrefstyleError(f"profile version {doc.get('version')} is not supported", path=path)
        model = doc.get("model")
        if not isinstance(model, str) or not model:
            raise PrefstyleError('profile names no "model" (the model that made it); personalize again', path=path)
        for key, kind in (("data", dict), ("model_config", dict), ("tensors", list)):
            if key in doc and not isinstance(doc[key], kind):
                raise PrefstyleError(
                    f'profile field "{key}" must be a {"JSON object" if kind is dict else "list"}', path=path
                )
        user = doc.get("user")
        if user is not None and not isinstance(user, str):
            raise PrefstyleError('profile field "user" must be a string', path=path)
        names = doc.get("tensors") or []
        if not all(isinstance(n, str) for n in names):
            raise PrefstyleError('profile field "tensors" must list tensor names', path=path)
        tensors: dict[str, torch.Tensor] = {}
        if names:
            tpath = path.with_suffix(".safetensors")
            if not tpath.is_file():
                raise PrefstyleError("profile tensors missing (expected beside the .json)", path=tpath)
            try:
                tensors = load_file(str(tpath))
            except Exception as e:  # noqa: BLE001 - safetensors raises its own error type (or OSError) for bad files
                raise PrefstyleError(
                    f"profile tensors unreadable (truncated or not a safetensors file: "
                    f"{' '.join(str(e).split())[:200]})",
                    path=tpath,
                ) from None
            missing = sorted(set(names) - set(tensors))
            if missing:
                raise PrefstyleError(f"profile tensors missing: {', '.join(missing)}", path=tpath)
            for name, t in tensors.items():
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    raise PrefstyleError(f"profile tensor '{name}' holds NaN or infinite values", path=tpath)
        return cls(
            model=model, data=doc.get("data", {}), tensors=tensors, user=user, model_config=doc.get("model_config", {})
        )


class PersonalizationModel(abc.ABC):
    """Learn a user from references; render images in that user's taste."""

    name: str = "model"

    @abc.abstractmethod
    def personalize(self, refs: list[Reference], user: str | None = None) -> Profile:
        """Build a profile from a user's references (may be empty: then a sensible default)."""

    @abc.abstractmethod
    def render(self, img: torch.Tensor, profile: Profile) -> torch.Tensor:
        """``(B,3,H,W)`` sRGB [0,1] -> ``(B,3,H,W)`` sRGB [0,1] in the profile's taste."""

    def personalize_liked(self, images: list[torch.Tensor], user: str | None = None) -> Profile:
        """Build a profile from photos the user likes (``(3,H,W)`` sRGB [0,1] each), no pairs.

        Models that can only learn from pairwise judgments refuse with a clear message.
        """
        raise PrefstyleError(
            f"model '{self.name}' learns from pairwise judgments, not from liked photos; "
            "use a model that supports --liked (pienet) or personalize from a pairs dataset"
        )

    def check_profile(self, profile: Profile) -> None:
        """Refuse a profile made by another model, with a clear message."""
        if profile.model != self.name:
            raise PrefstyleError(
                f"this profile was made by model '{profile.model}', not '{self.name}'; "
                f"use --model {profile.model} or personalize again"
            )

    def config(self) -> dict[str, Any]:
        """JSON-able description of how this model was built (stored in profiles)."""
        return {"name": self.name}

    # -- optional abilities: every caller asks through these, never with getattr ---------------

    #: True for reference points that know the simulator's ground truth (``oracle``, ``bayes``):
    #: reports list them apart from real models
    reference_point: bool = False

    def luts(self, img: torch.Tensor, profile: Profile) -> torch.Tensor | None:
        """One 3D LUT per image, ``(B,3,S,S,S)`` (layout of :mod:`prefstyle.imaging.lut`), that
        renders ``img`` ``(B,3,H,W)`` sRGB [0,1] in the profile's taste, or None when the model's
        rendering is not a per-pixel colour map (then callers use :meth:`render`)."""
        return None

    def question_values(
        self, refs: list[Reference], scenes: list[tuple[torch.Tensor, list[torch.Tensor]]]
    ) -> list[torch.Tensor] | None:
        """Expected information (nats) of asking about each pair of renditions of each scene.

        ``refs``: the answers so far; ``scenes``: ``(source (3,H,W), [R renditions (3,H,W)])`` per
        candidate scene. Returns one symmetric ``(R,R)`` matrix per scene (zero diagonal), or None
        when the model cannot rank questions (then the study keeps its plan).
        """
        return None

    def describe(self, profile: Profile) -> str:
        """The taste in a photographer's words (one line, e.g. slider values), or "" when the model
        has none to give."""
        return ""

    def prepare_torch_free(self) -> None:
        """Write what rendering this model's profiles without torch needs and cannot compute without it
        (PieNet: its network as ONNX, in the cache), so that the next ``enhance`` of such a profile
        does not import torch. Most models need nothing. Never raises: failing only costs speed."""
        return None

    def export_notes(self, profile: Profile) -> list[str]:
        """One-line caveats for exporting this taste as one global LUT (e.g. brightness set per
        photo, which a single ``.cube`` cannot do). Empty when a LUT holds the taste exactly."""
        return []

    def slider_edit(self, profile: Profile) -> tuple[RetouchParams, float] | None:
        """The taste as a raw editor's slider settings: ``(params, gain)``, where ``params`` are the
        :class:`~prefstyle.imaging.params.RetouchParams` a photo at mid-grey gets and ``gain`` in
        [0, 1] how much of each photo's metered brightness correction is added to the exposure
        (0: the same edit for every photo). A model whose taste is not itself a slider edit may
        return the closest one and say how close in :meth:`preset_notes`. None when it has none
        (then ``export-preset`` refuses and ``export-lut`` is the way out)."""
        return None

    def preset_notes(self, profile: Profile) -> list[str]:
        """One-line caveats for an editor preset of :meth:`slider_edit` (e.g. how far the closest
        slider edit is from the taste). Empty when the preset holds the taste exactly."""
        return []


ModelFactory = Callable[..., PersonalizationModel]
_REGISTRY: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: make a factory (class or function) available as ``create_model(name)``."""

    def deco(factory: ModelFactory) -> ModelFactory:
        _REGISTRY[name] = factory
        return factory

    return deco


def _load_builtin_models() -> None:
    import importlib
    import pkgutil

    import prefstyle.models as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("base",):
            importlib.import_module(f"prefstyle.models.{mod.name}")


def list_models() -> list[str]:
    """Registered model names, sorted."""
    _load_builtin_models()
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs: Any) -> PersonalizationModel:
    """Build a registered model by name (unknown names give a one-line error with the choices)."""
    _load_builtin_models()
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: {', '.join(sorted(_REGISTRY))})"
        raise PrefstyleError(f"unknown model '{name}'{hint}")
    return _REGISTRY[name](**kwargs)
