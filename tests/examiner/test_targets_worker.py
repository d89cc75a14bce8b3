"""Worker targets: a fake worker that crashes, hangs and returns garbage; every failure is
recorded per sample, the worker is restarted, and the run continues."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from examiner.targets import TargetBatch, TargetError, checked_predict, load_target
from examiner.targets.envs import WorkerSpec, register_worker, registered_workers
from examiner.targets.worker import WorkerTarget, command_worker

# Behaviour is chosen by the value of the image's first pixel (channel 0).
FAKE_WORKER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import pe_worker

    OK, CRASH, HANG, BAD_SHAPE, NAN, RAISE, MISS, PRINT = range(8)

    def predict(images, K, boxes):
        b = len(images)
        codes = [int(img[0, 0, 0]) for img in images]
        if CRASH in codes:
            print("worker: about to crash", file=sys.stderr, flush=True)
            os._exit(3)
        if HANG in codes:
            time.sleep(3600)
        if RAISE in codes:
            raise ValueError("cannot handle this image")
        j2 = np.zeros((b, 17, 2), np.float32)
        j2[..., 0] = boxes[:, None, 0] + np.arange(17)[None] * 2.0
        j2[..., 1] = boxes[:, None, 1] + np.arange(17)[None] * 3.0
        j3 = np.tile(np.linspace(-0.5, 0.5, 51, dtype=np.float32).reshape(1, 17, 3), (b, 1, 1))
        errors = []
        for i, c in enumerate(codes):
            if c == NAN:
                j3[i, 2, 1] = np.nan
            if c == PRINT:
                print("stray print to stdout must not break the protocol")
            errors.append("no_detection" if c == MISS else "")
        if BAD_SHAPE in codes:
            j2 = j2[:, :5]
        return {"joints2d": j2, "joints3d": j3, "errors": np.array(errors)}

    pe_worker.serve(predict, convention="coco17", outputs=("joints2d", "joints3d"), max_batch=16, name="fake")
""")

# Speaks the hello by hand, then answers every request with bytes that are not a frame.
GARBAGE_WORKER = textwrap.dedent("""
    import os, sys
    import pe_worker
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    out.write(pe_worker.encode_frame({"protocol": 1, "convention": "coco17", "outputs": ["joints2d"], "max_batch": 4}))
    inp = os.fdopen(os.dup(0), "rb", buffering=0)
    while True:
        header = inp.read(pe_worker.HEADER_SIZE)
        if not header:
            break
        n = pe_worker.parse_header(header)
        while n:
            n -= len(inp.read(n))
        out.write(b"this is not a frame at all, just text\\n" * 4)
""")

CODES = {"ok": 0, "crash": 1, "hang": 2, "bad_shape": 3, "nan": 4, "raise": 5, "miss": 6, "print": 7}


def _batch(codes):
    b = len(codes)
    images = np.full((b, 32, 32, 3), 9, np.uint8)
    images[:, 0, 0, 0] = codes
    K = np.tile(np.array([[50, 0, 16], [0, 50, 16], [0, 0, 1]], np.float32), (b, 1, 1))
    boxes = np.tile(np.array([4, 2, 28, 30], np.float32), (b, 1))
    boxes[:, 0] += np.arange(b)
    return TargetBatch(images, K, boxes)


@pytest.fixture
def fake_script(tmp_path):
    p = tmp_path / "fake_worker.py"
    p.write_text(FAKE_WORKER)
    return p


def test_fake_worker_failures_are_recorded_per_sample(fake_script):
    model = command_worker([sys.executable, str(fake_script)], timeout_s=2.0, startup_timeout_s=60)
    try:
        assert model.convention == "coco17" and model.max_batch == 16
        names = ["ok", "crash", "ok", "hang", "print", "bad_shape", "ok", "nan", "raise", "miss", "ok"]
        pid0 = model.pid
        pred = checked_predict(model, _batch([CODES[n] for n in names]))
        kinds = [f.kind if f else None for f in pred.failures]
        assert kinds == [None, "crash", None, "timeout", None, "shape", None, "nan", "exception", "no_detection", None]
        msgs = {f.kind: f.message for f in pred.failures if f}
        assert "exited with code 3" in msgs["crash"] and "about to crash" in msgs["crash"]
        assert "2.0 s" in msgs["timeout"]
        assert "cannot handle this image" in msgs["exception"]
        assert model.restarts >= 3 and model.pid != pid0
        good = pred.ok
        np.testing.assert_allclose(pred.joints2d[good][:, 1], _batch([0] * 11).boxes[good][:, :2] + [2.0, 3.0])
        assert np.isnan(pred.joints3d[~good]).all()
        # the run goes on: the restarted worker serves a normal batch
        after = checked_predict(model, _batch([0, 0, 0]))
        assert after.ok.all()
        assert after.inference_seconds is not None and 0 <= after.inference_seconds <= after.seconds
    finally:
        model.close()
    assert model.pid is None


def test_worker_without_isolation_fails_whole_batch(fake_script):
    model = command_worker([sys.executable, str(fake_script)], timeout_s=5.0)
    model.isolate_failures = False
    try:
        pred = checked_predict(model, _batch([0, 1, 0]))
        assert [f.kind for f in pred.failures] == ["crash"] * 3
        assert checked_predict(model, _batch([0])).ok.all()
    finally:
        model.close()


def test_protocol_garbage_is_a_model_error(tmp_path):
    p = tmp_path / "garbage.py"
    p.write_text(GARBAGE_WORKER)
    model = command_worker([sys.executable, str(p)], timeout_s=5.0)
    try:
        pred = checked_predict(model, _batch([0, 0]))
        assert [f.kind for f in pred.failures] == ["protocol", "protocol"]
        assert "bad frame magic" in pred.failures[0].message
    finally:
        model.close()


def test_worker_that_cannot_start_is_a_config_error(tmp_path):
    p = tmp_path / "broken.py"
    p.write_text("import sys\nprint('missing dependency: torch', file=sys.stderr)\nsys.exit(1)\n")
    with pytest.raises(TargetError, match="missing dependency: torch"):
        command_worker([sys.executable, str(p)])
    with pytest.raises(TargetError, match="cannot start"):
        command_worker(["/nonexistent/python", "x.py"])


def test_cmd_spec_and_registered_worker(fake_script, isolated_home):
    with load_target(f'cmd:"{sys.executable} {fake_script}"?timeout=5') as model:
        assert checked_predict(model, _batch([0, 6])).failures[1].kind == "no_detection"
    register_worker(WorkerSpec(name="fake", command=(sys.executable, str(fake_script)), timeout_s=7.0))
    assert registered_workers()["fake"].timeout_s == 7.0
    with load_target("worker:fake") as model:
        assert isinstance(model, WorkerTarget) and model.spec.timeout_s == 7.0
        assert checked_predict(model, _batch([0])).ok.all()
    with pytest.raises(TargetError, match="targets register"):
        load_target("worker:unknown")


def test_cli_register_and_list(fake_script, isolated_home):
    from examiner.targets.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["register", "mine", "--timeout", "9", "--", sys.executable, str(fake_script)])
    assert r.exit_code == 0, r.output
    assert registered_workers()["mine"].command == (sys.executable, str(fake_script))
    r = runner.invoke(app, ["list", "--json"])
    assert r.exit_code == 0, r.output
    import json

    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["worker:mine"]["usable"] is True
    assert rows["mediapipe"]["usable"] is False and "targets install mediapipe" in rows["mediapipe"]["detail"]
