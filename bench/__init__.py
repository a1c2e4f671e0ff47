"""Benchmarks: each script measures the engine against a baseline in the same run (see README)."""
