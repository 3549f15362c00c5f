"""Typed settings from one TOML file.

The file is read with ``tomllib`` into frozen dataclasses. Unknown keys are errors (a typo in a
threshold must not silently fall back to a default), and every value is type-checked. Sections are
dataclasses; a section's module owns its fields and documents the clause of the standard each
threshold comes from. ``capture-agent.sample.toml`` at the repository root documents every key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from .devices import DeviceSettings
from .errors import ConfigError

T = TypeVar("T")


def _check_value(path: str, tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_value(path, a, value)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(f"{path}: {value!r} matches none of the allowed types")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {type(value).__name__}")
        return from_dict(tp, value, path)
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected an array, got {type(value).__name__}")
        item = args[0] if args else Any
        items = [_check_value(f"{path}[{i}]", item, v) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {type(value).__name__}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _check_value(f"{path}.{k}", vt, v) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and issubclass(tp, Path):
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a path string, got {value!r}")
        return Path(value)
    if typing.get_origin(tp) is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    raise ConfigError(f"{path}: unsupported setting type {tp!r}")


def from_dict(cls: type[T], data: dict[str, Any], path: str = "") -> T:
    """Build dataclass ``cls`` from a TOML table, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls, localns=_section_types())
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = path or "top level"
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)} in {where}; known: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _check_value(f"{path + '.' if path else ''}{name}", hints[name], value)
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path or 'config'}: {exc}") from None
    return obj


@dataclasses.dataclass(frozen=True)
class CameraSettings:
    # Device URIs composing one capture rig; the simulated camera is the embedded default.
    uris: tuple[str, ...] = ("sim://",)
    read_timeout_s: float = 1.0


@dataclasses.dataclass(frozen=True)
class LoggingSettings:
    level: typing.Literal["debug", "info", "warning", "error"] = "info"


def _quality_settings():
    from .quality.settings import QualitySettings
    return QualitySettings


@dataclasses.dataclass(frozen=True)
class Settings:
    terminal_id: str = "terminal-dev-0001"
    camera: CameraSettings = CameraSettings()
    logging: LoggingSettings = LoggingSettings()
    quality: "QualitySettings" = dataclasses.field(default_factory=lambda: _quality_settings()())
    devices: DeviceSettings = DeviceSettings()


def _section_types() -> dict[str, type]:
    """Section classes that live in their own modules (imported late to keep config import-light)."""
    from .quality.settings import QualitySettings
    return {"QualitySettings": QualitySettings}


def load(path: str | Path | None) -> Settings:
    """Read settings from ``path``; ``None`` gives the built-in defaults."""
    if path is None:
        return Settings()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    return from_dict(Settings, data)
