"""Training code: the bundled baseline network (`baseline`) and fine-tuning it on the
failure modes a search finds (`finetune`). Heavy (torch); imported lazily by the CLI."""
