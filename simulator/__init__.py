"""PoseExaminer simulator: parametric human scenes rendered headless with full ground truth.

    >>> import simulator
    >>> sample = simulator.render(simulator.SceneParams())

Heavy modules (pyrender, anny, torch) load on first use, not at import.
"""

from simulator.errors import AssetError, ParamError, PoseExaminerError, RenderError
from simulator.params import SCHEMA_VERSION, Dimension, ParamSpace, SceneParams, validate_params


def render(params, config=None):
    from simulator.renderer import render as _render

    return _render(params, config)


def render_batch(params_list, config=None):
    from simulator.renderer import render_batch as _render_batch

    return _render_batch(params_list, config)


__all__ = [
    "AssetError", "ParamError", "PoseExaminerError", "RenderError", "SCHEMA_VERSION",
    "Dimension", "ParamSpace", "SceneParams", "validate_params", "render", "render_batch",
]
