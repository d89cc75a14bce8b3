"""Offline garment training, not on the rendering path: the draping simulation that makes
the training data (`drape`) and the training of the predictors (`train`), run by
`python scripts/train_garments.py`. The renderer only loads the trained weights
(`simulator.garments.model`)."""
