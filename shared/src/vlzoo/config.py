"""Typed experiment configs: dataclass defaults, YAML files holding only the changes, dotted CLI overrides.

The resolution order is (later wins)::

    dataclass defaults  <-  YAML file(s) (only the keys that change)  <-  CLI overrides ``train.lr=2e-5``

A YAML file may name a parent with ``_base_: other.yaml`` (resolved relative to the file), so a family of
configs can share a delta. Every key is checked against the dataclass fields: a typo is an error that names
the file and the key, never a silently ignored setting. Values are converted to the field's annotated type
(``int``, ``float``, ``bool``, ``str``, ``Path``, ``Optional[...]``, ``list[...]``/``tuple[...]``, ``Literal``,
nested dataclasses). The resolved config is written into each run folder by :func:`save_config` so a run can
always be reproduced from its folder alone.

Example::

    @dataclass
    class TrainConfig:
        lr: float = 1e-3
        \"\"\"Peak learning rate.\"\"\"

    @dataclass
    class ExperimentConfig:
        train: TrainConfig = field(default_factory=TrainConfig)

    cfg = load_config(ExperimentConfig, "configs/tiny.yaml", ["train.lr=2e-5"])
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "load_config",
    "apply_overrides",
    "merge_dict",
    "config_to_dict",
    "save_config",
    "parse_override",
]


class ConfigError(ValueError):
    """A config file or override that does not fit the dataclass schema."""


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the annotated type ``tp``; raise ConfigError naming ``where``."""
    if tp is Any:
        return value
    inner, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: null is not allowed for a field of type {tp}")
    tp = inner
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return _build(tp, value, where)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: {value!r} is not one of {list(allowed)}")
        return value
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{where}: expected a boolean, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(float(value)) if isinstance(value, str) and ("e" in value.lower()) else int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if tp is Path or (isinstance(tp, type) and issubclass(tp, os.PathLike)):
        return Path(value)
    return value


def _build(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; valid keys: {sorted(types_)}")
    kwargs = {k: _convert(v, types_[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc


def config_to_dict(cfg: Any) -> Any:
    """Plain-Python (YAML/JSON-safe) form of a config dataclass (Paths become strings, tuples lists)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, Mapping):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def merge_dict(base: dict, delta: Mapping) -> dict:
    """Recursive dict merge: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for k, v in delta.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge_dict(dict(out[k]), v)
        else:
            out[k] = v
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    path = Path(path).resolve()
    if path in seen:
        raise ConfigError(f"{path}: _base_ cycle through {[str(p) for p in seen]}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    base = data.pop("_base_", None)
    if base is None:
        return data
    bases = [base] if isinstance(base, str) else list(base)
    merged: dict = {}
    for b in bases:
        merged = merge_dict(merged, _read_yaml(path.parent / b, (*seen, path)))
    return merge_dict(merged, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=2e-5"`` -> (["train", "lr"], 2e-05). The value is parsed as YAML (so lists, numbers, null work)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip().lstrip("-")
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _nested(keys: list[str], value: Any) -> dict:
    out: Any = value
    for k in reversed(keys):
        out = {k: out}
    return out


def apply_overrides(cfg: T, overrides: Sequence[str]) -> T:
    """Return a copy of ``cfg`` with dotted ``key=value`` overrides applied (types checked)."""
    data = config_to_dict(cfg)
    for text in overrides:
        keys, value = parse_override(text)
        _check_path(type(cfg), keys, text)
        data = merge_dict(data, _nested(keys, value))
    return _build(type(cfg), data, "")


def _check_path(cls: type, keys: list[str], text: str) -> None:
    tp: Any = cls
    for i, k in enumerate(keys):
        tp, _ = _strip_optional(tp)
        if not dataclasses.is_dataclass(tp):
            if typing.get_origin(tp) in (dict, Mapping) or tp is dict:
                return
            raise ConfigError(f"override {text!r}: {'.'.join(keys[:i])} is not a section")
        types_ = _field_types(tp)
        if k not in types_:
            raise ConfigError(f"override {text!r}: unknown key {k!r} in {tp.__name__}; valid keys: {sorted(types_)}")
        tp = types_[k]


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> T:
    """Build ``cls`` from its defaults, then the YAML delta at ``path`` (optional), then ``overrides``."""
    data: dict = config_to_dict(cls())
    where = ""
    if path is not None:
        delta = _read_yaml(Path(path))
        where = str(path)
        try:
            _build(cls, merge_dict(data, delta), where)
        except ConfigError as exc:
            raise ConfigError(f"{exc}") from None
        data = merge_dict(data, delta)
    cfg = _build(cls, data, where)
    return apply_overrides(cfg, overrides) if overrides else cfg


def save_config(cfg: Any, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML (``.yaml``/``.yml``) or JSON, atomically."""
    from vlzoo.run.checkpoint import atomic_write_text

    path = Path(path)
    data = config_to_dict(cfg)
    text = json.dumps(data, indent=2) if path.suffix == ".json" else yaml.safe_dump(data, sort_keys=False)
    atomic_write_text(path, text)
    return path
