"""Audit stage: parameter counts with formulas, MACs, latency and size of a model."""
