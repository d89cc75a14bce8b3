"""Search strategies, by name. All share the env's score, the session's budget
accounting, region growing and the run store."""

from __future__ import annotations

from examiner.search.strategies.base import Strategy


def _marl():
    from examiner.search.strategies.marl import MARLStrategy

    return MARLStrategy


def _random():
    from examiner.search.strategies.random_search import RandomStrategy

    return RandomStrategy


def _cmaes():
    from examiner.search.strategies.cmaes import CMAESStrategy

    return CMAESStrategy


def _reinforce():
    from examiner.search.strategies.reinforce import ReinforceStrategy

    return ReinforceStrategy


def _hillclimb():
    from examiner.search.strategies.hillclimb import HillclimbStrategy

    return HillclimbStrategy


def _qd():
    from examiner.search.strategies.qd import QDStrategy

    return QDStrategy


# Lazy registry: importing the package does not import SB3/torch or cma.
STRATEGY_REGISTRY = {"marl": _marl, "random": _random, "cmaes": _cmaes, "reinforce": _reinforce,
                     "hillclimb": _hillclimb, "qd": _qd}


def available_strategies() -> tuple[str, ...]:
    return tuple(STRATEGY_REGISTRY)


def get_strategy(name: str) -> type[Strategy]:
    from examiner.search.errors import SearchConfigError

    if name not in STRATEGY_REGISTRY:
        raise SearchConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGY_REGISTRY)}")
    return STRATEGY_REGISTRY[name]()
