"""The loop page (reports/loop.py) from a loop.json state."""

from reports.loop import loop_html


def test_loop_page_tells_each_round():
    mode = lambda i, rank, rate, med: {"id": i, "rank": rank, "n": 10, "k": int(rate * 10), "rate": rate, "median": med}  # noqa: E731
    state = {
        "config": {"model": "baseline", "rounds": 2, "space": "pose", "budget": 100, "strategy": "marl", "n": 50,
                   "base_share": 0.2, "trainer": "builtin", "seed": 0},
        "threshold": 90.0, "status": "complete", "final_model": "onnx:/m2.onnx",
        "rounds": [
            {"round": 1, "model_before": "baseline", "model_after": "onnx:/m1.onnx",
             "examine": {"evaluations": 100, "failures": 40, "modes": [{"id": 7, "rank": None, "rate": 0.9},
                                                                        {"id": 3, "rank": None, "rate": 0.8}]},
             "recheck": {"before": [mode(3, 1, 0.9, 150.0), mode(7, 2, 0.8, 120.0)],
                         "after": [mode(3, 1, 0.1, 60.0), mode(7, 2, 0.5, 100.0)], "earlier_rounds_after": {},
                         "need": [{"id": 3, "n": 10, "k_before": 6, "k_after": 5, "rate_before": 0.6,
                                   "rate_after": 0.5, "dimensions": ["pose.z02"]}]},
             "everyday": {"n": 250, "before": {"mpjpe_mm": 94.0}, "after": {"mpjpe_mm": 95.0}},
             "cpu": {"examine": 10.0}, "wall": {"examine": 20.0}},
            {"round": 2, "model_before": "onnx:/m1.onnx", "examine": {"evaluations": 100, "failures": 5, "modes": []},
             "stopped": "the search found no failure mode; nothing to fine-tune on"},
        ],
    }
    html = loop_html(state)
    assert html.count("<h2>Round") == 2
    assert "None" not in html
    assert html.index("<tr><td>1</td><td class=l>") < html.index("<tr><td>2</td><td class=l>")  # worst mode first
    assert "90%" in html and "10%" in html and "fixed" in html and "not fixed" in html
    assert "90% <span class=note>9/10</span>" in html  # a rate shows the fair samples it counts
    assert "94.0 &rarr; <b>95.0</b> mm (+1.1%)" in html
    assert "nothing to fine-tune on" in html
    # the need-region recheck: the mode with a need shows it, the other needs nothing alone
    assert "what it needs alone: failing before &rarr; after" in html
    assert "60% &rarr; 50% <span class=note>(pose.z02; 10 scenes)</span>" in html
    assert "- (needs nothing alone)" in html
    older = {**state, "rounds": [{**state["rounds"][0], "recheck": {k: v for k, v in state["rounds"][0]["recheck"].items()
                                                                    if k != "need"}}, state["rounds"][1]]}
    assert "what it needs alone" not in loop_html(older)  # a loop saved before the need recheck


def test_loop_page_names_each_mode_in_words():
    """A mode stored with its report description reads in words (escaped), its bounds
    folded under it; a mode stored before descriptions existed still shows its bounds."""
    state = {
        "config": {"model": "baseline", "rounds": 1, "space": "pose", "budget": 100, "strategy": "marl", "n": 50,
                   "base_share": 0.2, "trainer": "builtin", "seed": 0},
        "threshold": 90.0, "status": "complete",
        "rounds": [{"round": 1, "model_before": "baseline", "examine": {"evaluations": 100, "failures": 40, "modes": [
            {"id": 1, "rank": 1, "rate": 0.9, "constrained": {"camera.azimuth": [-0.9, -0.5]},
             "description": "seen from its right side <b>"},
            {"id": 2, "rank": 2, "rate": 0.8, "constrained": {"pose.z0": [0.1, 0.4]}}]}}],
    }
    html = loop_html(state)
    assert "seen from its right side &lt;b&gt;<details>" in html
    assert "1 constrained dimension(s)" in html and "camera.azimuth in [-0.90, -0.50]" in html
    assert "<td class=l>pose.z0 in [+0.10, +0.40]</td>" in html


def test_loop_page_says_how_each_set_was_mixed():
    state = {
        "config": {"model": "baseline", "rounds": 1, "space": "pose", "budget": 100, "strategy": "marl", "n": 24000,
                   "base_share": 0.2, "mode_scenes": 4800, "trainer": "builtin", "seed": 0},
        "threshold": 90.0, "status": "complete",
        "rounds": [{"round": 1, "model_before": "baseline", "base_share": 0.4, "examine": {
            "evaluations": 100, "failures": 40, "modes": [{"id": i, "rank": i + 1, "rate": 0.9} for i in range(3)]}}],
    }
    html = loop_html(state)
    assert "24000 scenes per fine-tuning set (about 4800 per failure mode, the rest from the whole space)" in html
    assert "Its fine-tuning set: 60% of the scenes in the modes, 40% from the whole space." in html
    assert "(20% from the whole space, the rest in the modes)" in loop_html(
        {**state, "config": {**state["config"], "mode_scenes": None}})
    assert "(20% from the whole space, the rest in the modes (drawn near the failing scenes the search logged" in loop_html(
        {**state, "config": {**state["config"], "mode_scenes": None, "mode_region": "failures"}})
