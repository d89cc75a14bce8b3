"""Hostile and damaged input (issue 17): a run directory someone sent runs no code, damaged
files lose nothing, exit codes are honest, errors are one line.

Every test goes through the real CLI (`examiner.app.cli.main`, in process; the SIGINT test in a
subprocess) on the analytic target, which needs no renderer."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from examiner.app.cli import main
from examiner.store import CHECKPOINT_FILE, CHECKPOINT_MAGIC, EVAL_FILE, KEY_FILE, META_FILE, MODES_FILE, SUMMARY_FILE

REPO = Path(__file__).resolve().parents[2]
RUN_ARGS = ["--model", "analytic:planted", "--space", "joints,camera", "--strategy", "random", "--agents", "4",
            "--seed", "3"]


def _keep_caches(setenv) -> None:
    """Keep the body-model and GL caches where they are (they are derived from
    POSEEXAMINER_HOME; a fresh anny cache takes minutes to build)."""
    from simulator.paths import home

    root = home()
    for var, sub in (("ANNY_CACHE_DIR", "anny"), ("WARP_CACHE_PATH", "warp"), ("MESA_SHADER_CACHE_DIR", "mesa")):
        setenv(var, os.environ.get(var, str(root / sub)))


@pytest.fixture(autouse=True)
def _own_home(tmp_path_factory, monkeypatch):
    """The tests sign checkpoints with their own installation key (POSEEXAMINER_HOME)."""
    _keep_caches(monkeypatch.setenv)
    home = tmp_path_factory.getbasetemp() / "poseexaminer-home"
    monkeypatch.setenv("POSEEXAMINER_HOME", str(home))
    return home


def cli(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["-q", *args])
    err = capsys.readouterr().err.strip()
    return rc, err


def assert_one_line(err: str) -> None:
    assert err and "\n" not in err and "Traceback" not in err, err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        _keep_caches(mp.setenv)
        mp.setenv("POSEEXAMINER_HOME", str(tmp_path_factory.getbasetemp() / "poseexaminer-home"))
        out = tmp_path_factory.mktemp("hostile") / "run"
        assert main(["-q", "run", *RUN_ARGS, "--budget", "300", "--out", str(out), "--no-report"]) == 0
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(finished_run, dst)
    return dst


def log_lines(run: Path) -> list[dict]:
    recs = [json.loads(x) for x in (run / EVAL_FILE).read_text().splitlines()]
    for r in recs:
        r.pop("timings", None)
    return recs


# ---- 1. checkpoints: never unpickle what this installation did not write ----------------


class _Touch:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.parametrize("framing", ["bare pickle", "forged header"])
def test_a_crafted_checkpoint_executes_nothing(run_copy, tmp_path, capsys, framing):
    marker = tmp_path / "MARKER"
    blob = pickle.dumps({"n_evaluations": 0, "state": _Touch(marker)})
    assert pickle.loads(pickle.dumps(_Touch(tmp_path / "probe"))) is None and (tmp_path / "probe").exists()
    data = blob if framing == "bare pickle" else CHECKPOINT_MAGIC + b"\0" * 32 + blob
    (run_copy / CHECKPOINT_FILE).write_bytes(data)
    rc, err = cli(capsys, "run", "--resume", str(run_copy), "--no-report")
    assert rc == 2 and "checkpoint.pkl is not signed by this installation" in err
    assert_one_line(err)
    assert not marker.exists()
    # read-only commands never unpickle
    assert cli(capsys, "report", str(run_copy), "--no-images")[0] == 0
    assert cli(capsys, "diff", str(run_copy), str(run_copy))[0] == 0
    assert not marker.exists()


def test_read_only_commands_never_unpickle(run_copy, capsys, monkeypatch):
    """report, diff, recheck and runs repair read a run without unpickling anything from it,
    even with a valid signed checkpoint in it. `pickle.loads` (how the store reads a
    checkpoint) raises whatever the bytes; `pickle.load`, `pickle.Unpickler` and
    `torch.load` raise on a file in the run directory (the body model loads its own shipped
    tensors with `torch.load(weights_only=True)`)."""
    import torch

    assert (run_copy / CHECKPOINT_FILE).read_bytes().startswith(CHECKPOINT_MAGIC)
    calls = []
    root = str(run_copy.resolve())

    def refuse(what):
        calls.append(what)
        raise AssertionError(f"a read-only command unpickled ({what})")

    def in_run(f) -> bool:
        name = getattr(f, "name", f)
        return isinstance(name, (str, os.PathLike)) and os.path.abspath(name).startswith(root)

    real_load, real_torch_load, real_unpickler = pickle.load, torch.load, pickle.Unpickler

    class GuardedUnpickler(real_unpickler):
        def __init__(self, file, *a, **k):
            if in_run(file):
                refuse(f"Unpickler({file})")
            super().__init__(file, *a, **k)

    monkeypatch.setattr(pickle, "loads", lambda *a, **k: refuse("pickle.loads"))
    monkeypatch.setattr(pickle, "load", lambda f, *a, **k: refuse(f"load({f})") if in_run(f) else real_load(f, *a, **k))
    monkeypatch.setattr(pickle, "Unpickler", GuardedUnpickler)
    monkeypatch.setattr(torch, "load", lambda f, *a, **k: refuse(f"torch.load({f})") if in_run(f)
                        else real_torch_load(f, *a, **k))
    assert cli(capsys, "report", str(run_copy), "--no-images", "--json")[0] == 0
    assert cli(capsys, "diff", str(run_copy), str(run_copy), "--json")[0] == 0
    assert cli(capsys, "recheck", str(run_copy), "--model", "analytic:planted", "--samples", "3", "--probe", "5",
               "--json")[0] == 0
    assert cli(capsys, "runs", "repair", str(run_copy), "--json")[0] == 0
    assert calls == []
    cli(capsys, "run", "--resume", str(run_copy), "--no-report")  # the trap works: resuming unpickles
    assert calls == ["pickle.loads"]


def test_checkpoints_are_signed_with_a_private_key(finished_run, run_copy, _own_home, capsys, monkeypatch, tmp_path):
    key = _own_home / KEY_FILE
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) >= 32
    assert (finished_run / CHECKPOINT_FILE).read_bytes().startswith(CHECKPOINT_MAGIC)
    # Another installation (another key) refuses it; without the checkpoint the run replays.
    monkeypatch.setenv("POSEEXAMINER_HOME", str(tmp_path / "other-home"))
    rc, err = cli(capsys, "run", "--resume", str(run_copy), "--no-report")
    assert rc == 2 and "not signed by this installation" in err
    (run_copy / CHECKPOINT_FILE).unlink()
    before = log_lines(run_copy)
    assert cli(capsys, "run", "--resume", str(run_copy), "--no-report")[0] == 0
    assert log_lines(run_copy) == before


# ---- 2. model specs inside a run are not started ------------------------------------------

HOSTILE_SPEC = "cmd:\"/bin/sh -c 'touch {marker}'\""


def _plant_spec(run: Path, spec: str) -> None:
    meta = json.loads((run / META_FILE).read_text())
    meta["model_spec"] = spec
    (run / META_FILE).write_text(json.dumps(meta))


def test_a_hostile_model_spec_executes_nothing(run_copy, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    _plant_spec(run_copy, HOSTILE_SPEC.format(marker=marker))
    rc, err = cli(capsys, "run", "--resume", str(run_copy), "--no-report")
    assert rc == 2 and "repeat it with --model" in err
    assert_one_line(err)
    assert cli(capsys, "report", str(run_copy), "--no-images")[0] == 0
    assert cli(capsys, "diff", str(run_copy), str(run_copy))[0] == 0
    capsys.readouterr()
    rc = main(["-q", "recheck", str(run_copy), "--model", "analytic:planted", "--samples", "5", "--probe", "20", "--json"])
    cmp = json.loads(capsys.readouterr().out)
    assert rc == 0 and cmp["probe"]["compared_with_a"] is False
    assert any("not started from a run directory" in n for n in cmp["notes"])
    assert not marker.exists()


def test_resume_refuses_changed_inputs(run_copy, capsys):
    for extra, word in (
        (["--model", "analytic:hidden"], "not 'analytic:hidden'"),
        (["--strategy", "cmaes"], "strategy"),
        (["--metric", "mpjpe"], "metric"),
        (["--threshold", "50"], "threshold"),
        (["--space", "pose"], "space"),
        (["--out", str(run_copy.parent / "elsewhere")], "drop --out"),
    ):
        before = (run_copy / EVAL_FILE).read_bytes()
        rc, err = cli(capsys, "run", "--resume", str(run_copy), *extra, "--no-report")
        assert rc == 2 and word in err, (extra, err)
        assert_one_line(err)
        assert (run_copy / EVAL_FILE).read_bytes() == before
    # the same model and the run's own folder are fine
    assert cli(capsys, "run", "--resume", str(run_copy), "--model", "analytic:planted", "--out", str(run_copy),
               "--no-report")[0] == 0


def test_worker_names_cannot_leave_the_registry(tmp_path, capsys, _own_home):
    for name in ("../../x", "a/b", ".hidden", "", "x" * 65):
        rc, err = cli(capsys, "targets", "register", name, "--", sys.executable, "w.py")
        assert rc == 2 and "worker name" in err, (name, err)
        assert_one_line(err)
    assert not (_own_home / "x.json").exists() and not (_own_home.parent / "x.json").exists()
    rc, _ = cli(capsys, "targets", "register", "my-model_2.1", "--", sys.executable, "w.py")
    assert rc == 0


# ---- 3. the log is append-only: damage stops, repair keeps every valid record -----------


def test_mid_file_garbage_loses_nothing(tmp_path, capsys):
    from tests.reports.conftest import write_synthetic_run

    run = write_synthetic_run(tmp_path / "syn", n=299)
    lines = (run / EVAL_FILE).read_bytes().splitlines(keepends=True)
    damaged = b"".join(lines[:149] + [b'{"i": 149, "round": \x00garbage\n'] + lines[149:])
    (run / EVAL_FILE).write_bytes(damaged)
    rc, err = cli(capsys, "report", str(run), "--no-images")
    assert rc == 2 and "line 150" in err and f"examiner runs repair {run}" in err
    assert_one_line(err)
    assert (run / EVAL_FILE).read_bytes() == damaged
    capsys.readouterr()
    assert main(["-q", "runs", "repair", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kept"] == 299 and result["dropped"] == 1 and result["dropped_lines"] == [150]
    assert Path(result["backup"]).read_bytes() == damaged and Path(result["backup"]).name.startswith(EVAL_FILE + ".bak-")
    assert (run / EVAL_FILE).read_bytes() == b"".join(lines)
    capsys.readouterr()
    assert main(["-q", "report", str(run), "--no-images", "--json"]) == 0
    results = json.loads(Path(json.loads(capsys.readouterr().out)["results"]).read_text())
    assert results["stats"]["evaluations"] == 299


def test_resume_never_truncates_a_damaged_log(run_copy, capsys):
    lines = (run_copy / EVAL_FILE).read_bytes().splitlines(keepends=True)
    damaged = b"".join(lines[:100] + [b"not json\n"] + lines[100:])
    (run_copy / EVAL_FILE).write_bytes(damaged)
    rc, err = cli(capsys, "run", "--resume", str(run_copy), "--no-report")
    assert rc == 2 and "line 101" in err and "runs repair" in err
    assert (run_copy / EVAL_FILE).read_bytes() == damaged


def test_a_torn_last_line_is_dropped_with_a_warning(run_copy, capsys, caplog):
    before = (run_copy / EVAL_FILE).read_bytes()
    with open(run_copy / EVAL_FILE, "ab") as f:
        f.write(b'{"i": 9999, "round"')
    rc, _ = cli(capsys, "run", "--resume", str(run_copy), "--no-report")
    assert rc == 0
    assert any("torn last line" in r.getMessage() for r in caplog.records)
    assert (run_copy / EVAL_FILE).read_bytes() == before


# ---- 4. CI gates fail on a run they cannot judge ----------------------------------------


@pytest.mark.parametrize("damage", ["no modes.json", "no summary.json", "unfinished summary"])
def test_gate_fails_on_an_incomplete_run(run_copy, capsys, damage):
    if damage == "no modes.json":
        (run_copy / MODES_FILE).unlink()
    elif damage == "no summary.json":
        (run_copy / SUMMARY_FILE).unlink()
    else:
        s = json.loads((run_copy / SUMMARY_FILE).read_text())
        (run_copy / SUMMARY_FILE).write_text(json.dumps({**s, "status": "running"}))
    rc, err = cli(capsys, "report", str(run_copy), "--no-images", "--fail-on", "modes>100")
    assert rc == 1 and err.startswith("error: gate failed:") and "complete run" in err
    assert_one_line(err)
    # without a gate the report is still written
    assert cli(capsys, "report", str(run_copy), "--no-images")[0] == 0


def test_gate_passes_a_complete_run(run_copy, capsys):
    assert cli(capsys, "report", str(run_copy), "--no-images", "--fail-on", "modes>100")[0] == 0


# ---- 6. output folders ------------------------------------------------------------------


def test_run_refuses_a_non_empty_out_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert cli(capsys, "run", *RUN_ARGS, "--budget", "40", "--out", str(out), "--no-report")[0] == 0  # empty: fine
    (out / "report.html").write_text("the user's own report")
    for target in (out, tmp_path / "other"):
        target.mkdir(exist_ok=True)
        (target / "notes.txt").write_text("keep me")
        rc, err = cli(capsys, "run", *RUN_ARGS, "--budget", "40", "--out", str(target), "--no-report")
        assert rc == 2 and "not empty" in err and "--overwrite" in err
        assert_one_line(err)
    assert (out / "report.html").read_text() == "the user's own report"
    assert cli(capsys, "run", *RUN_ARGS, "--budget", "40", "--out", str(out), "--no-report", "--overwrite")[0] == 0
    assert (out / "notes.txt").read_text() == "keep me"


def test_a_failed_run_leaves_no_folder_behind(tmp_path, capsys):
    out = tmp_path / "new"
    # the analytic target reports no `pck`: found at the first round, after the store exists
    rc, err = cli(capsys, "run", *RUN_ARGS, "--budget", "40", "--metric", "pck", "--threshold", "0.5",
                  "--out", str(out), "--no-report")
    assert rc == 2 and "pck" in err
    assert not out.exists()
    assert cli(capsys, "run", *RUN_ARGS, "--budget", "40", "--out", str(out), "--no-report")[0] == 0


def test_evaluate_refuses_a_non_empty_out(tmp_path, capsys):
    out = tmp_path / "ev"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    rc, err = cli(capsys, "evaluate", "--model", "whitebox:", "--n", "2", "--out", str(out))
    assert rc == 2 and "not empty" in err
    assert (out / "summary.json").read_text() == "{}"


# ---- 7. exit codes ----------------------------------------------------------------------


def test_run_app_returns_a_commands_exit_code():
    import typer

    from examiner.console import run_app

    app = typer.Typer()

    @app.command()
    def fails() -> None:
        raise typer.Exit(3)

    @app.command()
    def ok() -> None:
        pass

    assert run_app(app, ["fails"]) == 3 and run_app(app, ["ok"]) == 0


def test_evaluate_fails_when_every_sample_is_a_model_error(tmp_path, capsys, monkeypatch):
    from examiner import evaluate as ev
    from tests.examiner.conftest import synthetic_sample

    monkeypatch.setattr(ev, "_default_render", lambda: (lambda scenes: [synthetic_sample(p) for p in scenes]))
    model = tmp_path / "broken.py"
    model.write_text(
        "class Broken:\n"
        "    convention = 'coco17'\n"
        "    def __init__(self, every='1'):\n"
        "        self.every = int(every)\n"
        "        self.calls = 0\n"
        "    def predict(self, batch):\n"
        "        self.calls += 1\n"
        "        if self.calls % self.every == 0:\n"
        "            raise RuntimeError('wrong sidecar')\n"
        "        from examiner.targets.whitebox import WhiteBoxTarget\n"
        "        return WhiteBoxTarget([], noise_m=0.0).predict(batch)\n"
        "    needs_ground_truth = True\n"
        "def make(every='1'):\n"
        "    return Broken(every)\n"
    )
    rc, err = cli(capsys, "evaluate", "--model", f"python:{model}:make", "--n", "4", "--batch-size", "2",
                  "--render-workers", "0", "--out", str(tmp_path / "all"))
    assert rc == 2 and "every one of the 4 samples was a model error" in err
    assert_one_line(err)
    rc, err = cli(capsys, "evaluate", "--model", f"python:{model}:make?every=2", "--n", "4", "--batch-size", "2",
                  "--render-workers", "0", "--out", str(tmp_path / "half"))
    assert rc == 0 and "warning: 2 of 4 samples were model errors" in err


def test_sigint_exits_130_and_the_run_resumes_to_the_uninterrupted_log(tmp_path, _own_home):
    env = {**os.environ, "PYTHONPATH": str(REPO), "POSEEXAMINER_HOME": str(_own_home)}
    args = [sys.executable, "-m", "examiner.app.cli", "-q", "run", "--model", "analytic:planted?delay=0.05",
            "--space", "joints,camera", "--strategy", "random", "--agents", "4", "--seed", "5", "--budget", "400",
            "--no-report"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run([*args, "--out", str(whole)], env=env, check=True, capture_output=True, timeout=120)
    # A job started with `&` by a shell without job control (some CI runners) inherits
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler: give the run
    # the default disposition, as a terminal would.
    proc = subprocess.Popen([*args, "--out", str(cut)], env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = cut / EVAL_FILE
    try:
        # wait (without a fixed sleep) until the run has logged part of its budget
        while proc.poll() is None and not (log.exists() and log.read_bytes().count(b"\n") >= 40):
            try:
                proc.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                pass
        assert proc.poll() is None, "the run finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    err = err.strip()
    assert_one_line(err)
    assert "interrupted after" in err and f"examiner run --resume {cut}" in err
    assert not (cut / SUMMARY_FILE).exists()
    done = subprocess.run([sys.executable, "-m", "examiner.app.cli", "-q", "run", "--resume", str(cut), "--no-report"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert log_lines(cut) == log_lines(whole)


# ---- 8. file-system errors are one line, from the console layer -------------------------


def test_a_read_only_out_gives_one_line(tmp_path, capsys, monkeypatch):
    import errno

    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: make the file system say no instead
        real_mkdir = Path.mkdir

        def refuse(self, *a, **k):
            if str(self).startswith(str(ro)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
            return real_mkdir(self, *a, **k)

        monkeypatch.setattr(Path, "mkdir", refuse)
    else:
        ro.chmod(0o500)
    try:
        for argv in (["run", *RUN_ARGS, "--budget", "40", "--out", str(ro / "run"), "--no-report"],
                     ["evaluate", "--model", "whitebox:", "--n", "2", "--out", str(ro / "ev")]):
            rc, err = cli(capsys, *argv)
            assert rc == 2 and str(ro) in err and ("read-only" in err or "permission" in err.lower()), err
            assert_one_line(err)
    finally:
        ro.chmod(0o700)
    rc, err = cli(capsys, "run", *RUN_ARGS, "--budget", "40", "--out", str(tmp_path / ("x" * 300)), "--no-report")
    assert rc == 2 and "too long" in err
    assert_one_line(err)
