"""Training configs: YAML files with dotted ``key=value`` overrides, merged over defaults.

A config (``configs/*.yaml``) has these keys (defaults in :data:`DEFAULTS`)::

    task:      {name: pienet, module: null, ...}   # name + the model's own options
    data:      {...}                               # the task's data options
    optim:     {name: adam, lr: 1e-4, weight_decay: 0, betas: [0.9, 0.999], eps: 1e-8, fused: true}
    schedule:  {name: cosine, warmup: 0, min_factor: 0, restarts: [], milestones: [], gamma: 0.1}
    steps: 1000          # optimizer steps in all
    batch_size: 16       # global batch (split evenly across processes)
    amp: auto            # auto (bf16/fp16 on CUDA, off on CPU) | true | false | bf16 | fp16
    grad_clip: 1.0       # max global gradient norm, null = off
    ema: null            # EMA decay (e.g. 0.999) or null
    seed: 0
    deterministic: false # torch.use_deterministic_algorithms
    log_every: 10
    val_every: 200       # 0 = only at the end
    val_at_start: false
    ckpt_every: 200      # 0 = only at the end (and when stopped)
    keep_checkpoints: 3
    out: runs/NAME
    device: auto         # auto | cpu | cuda | cuda:1 ...
    threads: null        # torch CPU threads (null: torch's default)

``task`` keys other than ``name`` and ``module`` are the model's options (``task_model_cfg``).
Overrides use dots (``optim.lr=3e-4``, ``task.backbone=efficientnet_lite0``,
``data.crowd=null``); values are parsed as YAML scalars/flow collections (``[1, 2]``,
``{a: 1}``). Unknown top-level keys are refused (typos would silently do nothing).

Checked before any work, each error one line naming the key:

* unknown keys at the top level, in ``optim`` and ``schedule``, and among the task's model
  options (:func:`task_option_keys`: a task's ``OPTIONS``, else what its model's constructor
  and its code accept);
* values: integers where integers belong, numbers finite (no ``.nan``/``.inf`` anywhere), rates
  and sizes positive and in range (``optim.lr`` > 0, ``task.lut_size`` in 2..65, sizes at most
  8192, ...);
* ``out`` must be writable (:func:`load_config`).
"""

from __future__ import annotations

import copy
import inspect
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from prefstyle.errors import InputFormatError, PrefstyleError

if TYPE_CHECKING:
    from prefstyle.train.task import TrainTask

__all__ = [
    "DEFAULTS",
    "apply_overrides",
    "load_config",
    "merge",
    "resolve_config",
    "task_model_cfg",
    "task_option_keys",
]

DEFAULTS: dict[str, Any] = {
    "task": {"name": None, "module": None},
    "data": {},
    "optim": {
        "name": "adam",
        "lr": 1e-4,
        "weight_decay": 0.0,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "momentum": 0.9,
        "fused": True,
    },
    "schedule": {"name": "constant", "warmup": 0, "min_factor": 0.0, "restarts": [], "milestones": [], "gamma": 0.1},
    "steps": 1000,
    "batch_size": 16,
    "amp": "auto",
    "grad_clip": None,
    "ema": None,
    "seed": 0,
    "deterministic": False,
    "log_every": 10,
    "val_every": 200,
    "val_at_start": False,
    "ckpt_every": 200,
    "keep_checkpoints": 3,
    "out": None,
    "device": "auto",
    "threads": None,
}

_SCHEDULES = ("constant", "cosine", "step", "linear")
_OPTIMS = ("adam", "adamw", "sgd")


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (``update`` wins; nested dicts merged, everything else replaced)."""
    out = copy.deepcopy(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``1e-4`` is a number, not a string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+][0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def _parse_value(text: str) -> Any:
    try:
        return _yaml(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def apply_overrides(cfg: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``["a.b=1", ...]``: dotted keys, YAML values; intermediate dicts are created."""
    out = copy.deepcopy(cfg)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PrefstyleError(f"override must be KEY=VALUE (dots for nested keys), got {item!r}")
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                if p in node and node[p] is not None:
                    raise PrefstyleError(f"override {item!r}: '{p}' is not a section")
                node[p] = {}
            node = node[p]
        node[parts[-1]] = _parse_value(value)
    return out


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Read a YAML config (or start from ``base``), apply overrides, merge over defaults, check it."""
    doc: dict[str, Any] = dict(base or {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise PrefstyleError("config file not found", path=path)
        try:
            loaded = _yaml(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            line = getattr(getattr(e, "problem_mark", None), "line", None)
            raise InputFormatError(
                f"malformed YAML: {getattr(e, 'problem', e)}", path=path, line=None if line is None else line + 1
            ) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise InputFormatError("a config must be a YAML mapping", path=path)
        doc = merge(doc, loaded)
    doc = apply_overrides(doc, overrides)
    cfg = resolve_config(doc, source=path)
    from prefstyle.fsutil import check_writable

    check_writable(cfg["out"], folder=True)  # a read-only out= fails now, not after the first checkpoint's work
    return cfg


def resolve_config(doc: dict[str, Any], source: str | Path | None = None) -> dict[str, Any]:
    """Merge ``doc`` over :data:`DEFAULTS` and validate it; returns a new dict."""
    where: dict[str, Any] = {"path": source} if source is not None else {}
    unknown = sorted(set(doc) - set(DEFAULTS))
    if unknown:
        raise PrefstyleError(
            f"unknown config key(s): {', '.join(unknown)} (known: {', '.join(sorted(DEFAULTS))})", **where
        )
    cfg = merge(DEFAULTS, doc)
    if not isinstance(cfg["task"], dict) or not cfg["task"].get("name"):
        raise PrefstyleError("config needs task.name (the model to train, e.g. pienet)", **where)
    for key in ("data", "optim", "schedule"):
        if not isinstance(cfg[key], dict):
            raise PrefstyleError(f"config section '{key}' must be a mapping", **where)
    _check_finite(cfg, "", where)
    for section in ("optim", "schedule"):
        unknown = sorted(set(cfg[section]) - set(DEFAULTS[section]))
        if unknown:
            raise PrefstyleError(
                f"unknown config key(s): {', '.join(f'{section}.{k}' for k in unknown)} "
                f"(known: {', '.join(sorted(DEFAULTS[section]))})",
                **where,
            )
    ints = {
        "steps": 1,
        "batch_size": 1,
        "seed": None,
        "log_every": 1,
        "val_every": 0,
        "ckpt_every": 0,
        "keep_checkpoints": 0,
    }
    for key, low in ints.items():
        cfg[key] = _int(cfg[key], key, where, low)
    if cfg["threads"] is not None:
        cfg["threads"] = _int(cfg["threads"], "threads", where, 1)
    for key in ("deterministic", "val_at_start"):
        if not isinstance(cfg[key], bool):
            raise PrefstyleError(f"'{key}' must be true or false, got {cfg[key]!r}", **where)
    if not isinstance(cfg["device"], str):
        raise PrefstyleError(f"'device' must be a string (auto, cpu, cuda, cuda:1 ...), got {cfg['device']!r}", **where)
    if cfg["out"] is not None and not isinstance(cfg["out"], str | Path):
        raise PrefstyleError(f"'out' must be a folder path, got {cfg['out']!r}", **where)
    _check_optim(cfg["optim"], where)
    _check_schedule(cfg["schedule"], where)
    if cfg["optim"]["name"] not in _OPTIMS:
        raise PrefstyleError(f"optim.name must be one of {', '.join(_OPTIMS)}, got {cfg['optim']['name']!r}", **where)
    if cfg["schedule"]["name"] not in _SCHEDULES:
        raise PrefstyleError(
            f"schedule.name must be one of {', '.join(_SCHEDULES)}, got {cfg['schedule']['name']!r}", **where
        )
    if cfg["amp"] not in ("auto", True, False, "bf16", "fp16"):
        raise PrefstyleError(f"amp must be auto, true, false, bf16 or fp16, got {cfg['amp']!r}", **where)
    if cfg["ema"] is not None and not 0.0 < _number(cfg["ema"], "ema", where) < 1.0:
        raise PrefstyleError(f"ema must be a decay in (0, 1) or null, got {cfg['ema']!r}", **where)
    if cfg["grad_clip"] is not None and _number(cfg["grad_clip"], "grad_clip", where) <= 0:
        raise PrefstyleError(f"grad_clip must be positive or null, got {cfg['grad_clip']!r}", **where)
    _check_task(cfg["task"], where)
    if cfg["out"] is None:
        cfg["out"] = f"runs/{cfg['task']['name']}"
    return cfg


# --------------------------------------------------------------------------------------------
# value checks
# --------------------------------------------------------------------------------------------


def _check_finite(node: Any, key: str, where: dict[str, Any]) -> None:
    """Refuse NaN and infinities anywhere in the config (``.nan`` parses as a float)."""
    if isinstance(node, dict):
        for k, v in node.items():
            _check_finite(v, f"{key}.{k}" if key else str(k), where)
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            _check_finite(v, f"{key}[{i}]", where)
    elif isinstance(node, float) and not math.isfinite(node):
        raise PrefstyleError(f"'{key}' must be a finite number, got {node}", **where)


def _number(value: Any, key: str, where: dict[str, Any]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PrefstyleError(f"'{key}' must be a number, got {value!r}", **where)
    return float(value)


def _int(value: Any, key: str, where: dict[str, Any], low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PrefstyleError(f"'{key}' must be an integer, got {value!r}", **where)
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{low}..{high}" if high is not None else f">= {low}"
        raise PrefstyleError(f"'{key}' must be {span}, got {value}", **where)
    return value


def _check_optim(o: dict[str, Any], where: dict[str, Any]) -> None:
    if _number(o["lr"], "optim.lr", where) <= 0:
        raise PrefstyleError(f"'optim.lr' must be > 0, got {o['lr']!r}", **where)
    if _number(o["weight_decay"], "optim.weight_decay", where) < 0:
        raise PrefstyleError(f"'optim.weight_decay' must be >= 0, got {o['weight_decay']!r}", **where)
    if _number(o["eps"], "optim.eps", where) <= 0:
        raise PrefstyleError(f"'optim.eps' must be > 0, got {o['eps']!r}", **where)
    if not 0 <= _number(o["momentum"], "optim.momentum", where) <= 1:
        raise PrefstyleError(f"'optim.momentum' must be in 0..1, got {o['momentum']!r}", **where)
    betas = o["betas"]
    if (
        not isinstance(betas, list | tuple)
        or len(betas) != 2
        or not all(0 <= _number(b, "optim.betas", where) < 1 for b in betas)
    ):
        raise PrefstyleError(f"'optim.betas' must be two numbers in [0, 1), got {betas!r}", **where)
    if not isinstance(o["fused"], bool):
        raise PrefstyleError(f"'optim.fused' must be true or false, got {o['fused']!r}", **where)


def _check_schedule(sch: dict[str, Any], where: dict[str, Any]) -> None:
    _int(sch["warmup"], "schedule.warmup", where, 0)
    if not 0 <= _number(sch["min_factor"], "schedule.min_factor", where) <= 1:
        raise PrefstyleError(f"'schedule.min_factor' must be in 0..1, got {sch['min_factor']!r}", **where)
    if _number(sch["gamma"], "schedule.gamma", where) <= 0:
        raise PrefstyleError(f"'schedule.gamma' must be > 0, got {sch['gamma']!r}", **where)
    for key in ("restarts", "milestones"):
        values = sch[key] if sch[key] is not None else []
        if not isinstance(values, list | tuple) or any(_number(v, f"schedule.{key}", where) < 0 for v in values):
            raise PrefstyleError(f"'schedule.{key}' must be a list of numbers >= 0, got {sch[key]!r}", **where)


#: task option names and the range their integer values must lie in (checked for every task)
_SIZE_RANGES: tuple[tuple[re.Pattern[str], int, int], ...] = (
    (re.compile(r"lut_size$"), 2, 65),
    (re.compile(r"(^|_)(size|side|thumb)$"), 1, 8192),
    (
        re.compile(
            r"^(n_[a-z_]+|particles|max_kept|d_model|ff|[a-z_]*_dim|[a-z_]*hidden|width|[a-z_]*channels|"
            r"queries|[a-z_]*_steps|[a-z_]*_queries)$"
        ),
        0,
        10_000_000,
    ),
)


def _check_task(task: dict[str, Any], where: dict[str, Any]) -> None:
    """The model options of ``task``: known keys (:func:`task_option_keys`), sensible values."""
    name, module = task["name"], task.get("module")
    opts = {k: v for k, v in task.items() if k not in ("name", "module")}
    schema = task_option_keys(str(name), module)
    if schema is not None:
        unknown = sorted(set(opts) - set(schema))
        if unknown:
            import difflib

            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, list(schema), n=1)
                hints.append(f"task.{k}" + (f" (did you mean task.{close[0]}?)" if close else ""))
            raise PrefstyleError(
                f"unknown config key(s) for task '{name}': {', '.join(hints)} (known: {', '.join(sorted(schema))})",
                **where,
            )
        for k, v in opts.items():
            default = schema.get(k, _UNKNOWN)
            _check_type(v, default, f"task.{k}", where)
    for k, v in opts.items():
        for pattern, low, high in _SIZE_RANGES:
            if pattern.search(k) and isinstance(v, int | float) and not isinstance(v, bool):
                _int(v, f"task.{k}", where, low, high)
                break


class _Unknown:
    """No default known for an option (its type is not checked)."""


_UNKNOWN = _Unknown()


def _check_type(value: Any, default: Any, key: str, where: dict[str, Any]) -> None:
    """A value must have the type of its option's default (when the default says one)."""
    if value is None or default is None or default is _UNKNOWN:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        want = "true or false"
    elif isinstance(default, int | float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and isinstance(default, int) and not isinstance(value, int):
            ok = float(value).is_integer()
        want = "an integer" if isinstance(default, int) else "a number"
    elif isinstance(default, str):
        ok = isinstance(value, str)
        want = "a string"
    elif isinstance(default, list | tuple):
        ok = isinstance(value, list | tuple)
        want = "a list"
    else:
        return
    if not ok:
        raise PrefstyleError(f"'{key}' must be {want}, got {value!r}", **where)


# --------------------------------------------------------------------------------------------
# what a task accepts
# --------------------------------------------------------------------------------------------

_CFG_READ = re.compile(r"""model_cfg(?:\.get|\.setdefault|\.pop)?\(\s*["'](\w+)["']|model_cfg\[\s*["'](\w+)["']\s*\]""")
_FIELDS_OF = re.compile(r"\bfields\(\s*(\w+)\s*\)")
_NOT_OPTIONS = {"self", "net", "module", "system", "checkpoint", "device", "card", "dataset", "users", "progress"}


def _signature_defaults(fn: Any) -> dict[str, Any]:
    """Keyword parameters of ``fn`` and their defaults (``_UNKNOWN`` when none)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {
        p.name: (_UNKNOWN if p.default is p.empty else p.default)
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in _NOT_OPTIONS
    }


def task_option_keys(name: str, module: str | None = None) -> dict[str, Any] | None:
    """The model options (``task`` keys other than ``name``/``module``) task ``name`` accepts,
    each with its default (or an unknown-default marker), or None when that cannot be known.

    A task (trainer task class, or a model fitted without gradients) may declare them as a
    class attribute ``OPTIONS`` (a mapping of name to default, or a list of names). Otherwise
    they are gathered with :mod:`inspect`: the keyword parameters of the registered model's
    constructor (and of its ``fit`` for models fitted without gradients), the ``*KEYS`` name
    lists of the task class and of its modules (``ARCH_KEYS``, ``UPE_ARCH_KEYS``, ...), the
    fields of the dataclasses the task reads with ``fields(...)``, and the keys its code reads
    from ``self.model_cfg``. A task of which nothing can be learnt is not checked.
    """
    from prefstyle.models.base import _REGISTRY, _load_builtin_models
    from prefstyle.train.task import _TASKS, get_task

    _load_builtin_models()
    task_cls: type[TrainTask] | None
    try:
        task_cls = get_task(name, module)
    except PrefstyleError:
        task_cls = _TASKS.get(name)
    model_cls = _REGISTRY.get(name)
    for holder in (task_cls, model_cls):
        declared = getattr(holder, "OPTIONS", None) if holder is not None else None
        if declared is not None:
            return dict(declared) if isinstance(declared, dict) else dict.fromkeys(declared, _UNKNOWN)
    keys: dict[str, Any] = {}
    if inspect.isclass(model_cls):
        keys.update(_signature_defaults(model_cls.__init__))
        if task_cls is None and callable(getattr(model_cls, "fit", None)):
            keys.update(_signature_defaults(model_cls.fit))  # type: ignore[attr-defined]  # checked just above
    if task_cls is not None:
        modules = []
        for c in task_cls.__mro__:
            if not c.__module__.startswith("prefstyle.") or c.__module__ == "prefstyle.train.task":
                continue
            modules.append(sys.modules.get(c.__module__))
            for k, v in vars(c).items():
                if k.endswith("KEYS") and isinstance(v, tuple | list | frozenset | set):
                    keys.update({x: keys.get(x, _UNKNOWN) for x in v if isinstance(x, str)})
            try:
                src = inspect.getsource(c)
            except (OSError, TypeError):
                continue
            for m in _CFG_READ.finditer(src):
                keys.setdefault(m.group(1) or m.group(2), _UNKNOWN)
            for m in _FIELDS_OF.finditer(src):
                dc = getattr(sys.modules.get(c.__module__), m.group(1), None)
                for f in getattr(dc, "__dataclass_fields__", {}).values():
                    keys.setdefault(f.name, f.default if f.default is not f.default_factory else _UNKNOWN)
        for mod in modules:
            for k, v in vars(mod).items() if mod is not None else ():
                if k.endswith("_KEYS") and isinstance(v, tuple | list) and all(isinstance(x, str) for x in v):
                    keys.update({x: keys.get(x, _UNKNOWN) for x in v})
    return keys or None


def task_model_cfg(cfg: dict[str, Any]) -> dict[str, Any]:
    """The model's own options: ``task`` without ``name`` and ``module``."""
    return {k: v for k, v in cfg["task"].items() if k not in ("name", "module")}
