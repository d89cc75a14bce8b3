"""Shared fixtures. Caches go to the user cache dir (never the repo)."""

import os

os.environ.setdefault("LP_NUM_THREADS", "2")
