"""Registry of dataset generators: name -> its `GeneratorSpec` (how to configure, render and
merge one). Generator modules load on first lookup."""

from __future__ import annotations

from typing import Callable

from generators.base import GeneratorSpec
from generators.errors import GeneratorError


def _dense() -> GeneratorSpec:
    from generators import dense

    return dense.SPEC


def _anomaly() -> GeneratorSpec:
    from generators import anomaly

    return anomaly.SPEC


def _finetune() -> GeneratorSpec:
    from generators import finetune

    return finetune.SPEC


_FACTORIES: dict[str, Callable[[], GeneratorSpec]] = {"dense": _dense, "anomaly": _anomaly, "finetune": _finetune}
_LOADED: dict[str, GeneratorSpec] = {}


def generator_spec(name: str) -> GeneratorSpec:
    """The spec of generator `name` (its module is imported on first use); GeneratorError
    naming the available ones for an unknown name."""
    if name not in _FACTORIES:
        raise GeneratorError(f"unknown generator {name!r}; available: {', '.join(available_generators())}")
    if name not in _LOADED:
        _LOADED[name] = _FACTORIES[name]()
    return _LOADED[name]


def register_generator(name: str, factory: Callable[[], GeneratorSpec]) -> None:
    _FACTORIES[name] = factory
    _LOADED.pop(name, None)


def available_generators() -> list[str]:
    return sorted(_FACTORIES)
