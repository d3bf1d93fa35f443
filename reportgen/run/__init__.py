"""Run stage: the runner, its executors and the archive every run is written to."""
