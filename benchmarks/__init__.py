"""Speed benchmarks of magnetkit generation (see README.md); run as ``python -m benchmarks.generation``."""
