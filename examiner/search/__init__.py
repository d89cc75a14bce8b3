"""The failure search: environment, agents/strategies, region growing, failure modes and
the runner. See docs/search.md."""

from examiner.search.config import EnvConfig, PPOConfig, RegionConfig, SearchConfig
from examiner.search.errors import BackendError, EvaluatorError, ResumeError, SearchConfigError
from examiner.search.evaluator import (
    AnalyticEvaluator,
    BoxEvaluator,
    Evaluator,
    EvaluatorFactory,
    Outcome,
    PlantedRegion,
    build_evaluator,
)
from examiner.search.runner import SearchResult, run_search

__all__ = [
    "AnalyticEvaluator", "BackendError", "BoxEvaluator", "EnvConfig", "Evaluator", "EvaluatorError",
    "EvaluatorFactory", "Outcome", "PPOConfig", "PlantedRegion", "RegionConfig", "ResumeError",
    "SearchConfig", "SearchConfigError", "SearchResult", "build_evaluator", "run_search",
]
