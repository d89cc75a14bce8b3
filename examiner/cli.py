"""Kept only for console scripts installed before the command line moved to `examiner.app`
(pyproject's entry point is now `examiner.app.cli:main`); part of the app layer."""

from examiner.app.cli import app, main  # noqa: F401

if __name__ == "__main__":
    import sys

    sys.exit(main())
