"""PoseExaminer generators: dataset writers downstream of the simulator.

- `dense`: UltraPose-style dense correspondence in the DensePose-COCO format;
- `anomaly`: AbHuman-style anatomical anomalies (18 classes, YOLO + COCO);
- `finetune`: fine-tuning sets from a search run's failure modes.

    >>> from generators import run_dataset
    >>> from generators.dense import DenseConfig
    >>> run_dataset("dense", DenseConfig(n=100), "out/dense")      # doctest: +SKIP

Heavy modules (renderers, body model) load on first use. docs/generators.md has the formats.
"""


def run_dataset(kind, config, out, **kw):
    from generators.engine import run_dataset as _run

    return _run(kind, config, out, **kw)


def regenerate_sample(out, index, dest):
    from generators.engine import regenerate_sample as _regen

    return _regen(out, index, dest)


def available_generators() -> list[str]:
    from generators.registry import available_generators as _avail

    return _avail()


__all__ = ["run_dataset", "regenerate_sample", "available_generators"]
