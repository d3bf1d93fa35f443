"""reportgen: train small vision models under identical settings and write the comparison report."""
__version__ = "0.1.0"
