"""The baseline network's data, network and export path (tiny sizes)."""

import numpy as np
import pytest

from examiner.training import baseline as bl
from simulator.params import ParamSpace, SceneParams


def test_everyday_bounds_lie_inside_the_default_space():
    full = {d.name: d for d in ParamSpace.from_groups(bl.EVERYDAY_GROUPS).dimensions}
    for name, (lo, hi) in bl.EVERYDAY_BOUNDS.items():
        assert full[name].low - 1e-9 <= lo < hi <= full[name].high + 1e-9, name


def test_example_targets_match_the_crop():
    from simulator.renderer import render

    s = render(SceneParams())
    crop, j3, j2 = bl.sample_to_example(s)
    assert crop.shape == (bl.CROP, bl.CROP, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(j3[0], 0.0, atol=1e-6)  # root-relative
    assert np.all((j2 > 0) & (j2 < 1))  # the whole body lies inside the 1.2x box crop
    # The crop shows the person where the 2D targets say: the pelvis pixel is not background.
    px = (j2[0] * bl.CROP).astype(int)
    bg = crop[2, 2].astype(int)
    assert np.abs(crop[px[1], px[0]].astype(int) - bg).sum() > 30


def test_network_shapes_and_onnx_export_match(tmp_path):
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = bl.build_network().eval()
    x = np.random.default_rng(0).integers(0, 255, (3, bl.CROP, bl.CROP, 3), dtype=np.uint8)
    with torch.no_grad():
        j3, j2 = net(bl._normalise(x))
    assert j3.shape == (3, 17, 3) and j2.shape == (3, 17, 2)
    bl.export(net, tmp_path)
    sess = ort.InferenceSession(str(tmp_path / "baseline.onnx"), providers=["CPUExecutionProvider"])
    o3, o2 = sess.run(None, {"image": bl._normalise(x).numpy()})
    np.testing.assert_allclose(o3, j3.numpy(), atol=1e-4)
    np.testing.assert_allclose(o2, j2.numpy(), atol=1e-5)
    import yaml

    side = yaml.safe_load((tmp_path / "baseline.yaml").read_text())
    assert side["convention"] == "h36m17" and side["input"]["size"] == [bl.CROP, bl.CROP]


@pytest.mark.slow
def test_training_is_seeded_same_seed_same_weights(tmp_path):
    """Dropout, shuffles, jitter and the initial weights all come from the seed."""
    pytest.importorskip("torch")
    cfg = bl.TrainConfig(n=6, val_n=3, epochs=2, batch=4, seed=0, workers=1)
    a = bl.train_baseline(cfg, tmp_path / "a", log=lambda _m: None, cache_dir=tmp_path / "cache")
    b = bl.train_baseline(cfg, tmp_path / "b", log=lambda _m: None, cache_dir=tmp_path / "cache")
    assert a["history"] == b["history"]
    wa = bl.load_onnx_network(tmp_path / "a" / "baseline.onnx").state_dict()
    wb = bl.load_onnx_network(tmp_path / "b" / "baseline.onnx").state_dict()
    assert all((wa[k] == wb[k]).all() for k in wa)
