"""Errors a user can cause. Each message is one line naming the problem and the fix."""


class PoseExaminerError(Exception):
    """Base class: the CLI prints these as one line (traceback only with -v)."""


class ParamError(PoseExaminerError, ValueError):
    """Bad scene parameters, parameter-space definition or vector."""


class AssetError(PoseExaminerError):
    """A model file or asset is missing or malformed."""


class RenderError(PoseExaminerError):
    """No usable OpenGL backend, or a rendering failure."""
