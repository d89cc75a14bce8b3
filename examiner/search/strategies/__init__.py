"""Search strategies, by name (`examiner.search.config.STRATEGY_CLASSES`, the one list).
All share the env's score, the session's budget accounting, region growing and the run
store."""

from __future__ import annotations

import importlib

from examiner.search.config import STRATEGY_CLASSES
from examiner.search.strategies.base import Strategy


def available_strategies() -> tuple[str, ...]:
    return tuple(STRATEGY_CLASSES)


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class `name` names (imported now: SB3/torch or cma load on use)."""
    from examiner.search.errors import SearchConfigError

    if name not in STRATEGY_CLASSES:
        raise SearchConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGY_CLASSES)}")
    module, _, cls = STRATEGY_CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), cls)
