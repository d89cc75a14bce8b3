"""The `examiner` command-line application: the top layer.

The only place that imports `generators` and `reports` and composes the packages ("run,
then report", "recheck, then compare", the demo). Modules: `cli` (the root Typer app and
its small commands; `main` is the console script), `run` (`examiner run`), `report`
(`report`, `diff`, `recheck`), `generate` (`examiner generate ...`), `demo`.
Library code lives in `simulator`, `examiner`, `generators` and `reports`;
tests/test_import_graph.py keeps the layers apart.
"""
