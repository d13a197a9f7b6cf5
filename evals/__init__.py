"""Benchmark scripts (run as files: python evals/<script>.py) and the modules their larger ones are split into."""
