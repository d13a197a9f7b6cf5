"""Parts of evals/whitebox_bench.py: the cases and models (real or random-weight), the measurements, and the report."""
