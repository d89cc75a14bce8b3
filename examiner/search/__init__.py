"""The failure search: environment, agents/strategies, region growing, failure modes and
the runner. See docs/search.md."""

from examiner.search.config import EnvConfig, PPOConfig, RegionConfig, SearchConfig
from examiner.search.errors import BackendError, EvaluatorError, ResumeError, SearchConfigError
from examiner.search.analytic import AnalyticEvaluator, BoxEvaluator, PlantedRegion
from examiner.search.factory import EvaluatorFactory, build_evaluator
from examiner.search.outcome import Evaluator, Outcome
from examiner.search.runner import SearchResult, run_search

__all__ = [
    "AnalyticEvaluator", "BackendError", "BoxEvaluator", "EnvConfig", "Evaluator", "EvaluatorError",
    "EvaluatorFactory", "Outcome", "PPOConfig", "PlantedRegion", "RegionConfig", "ResumeError",
    "SearchConfig", "SearchConfigError", "SearchResult", "build_evaluator", "run_search",
]
