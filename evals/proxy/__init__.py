"""Parts of evals/proxy_bench.py: the stand-in upstream, stores and proxy processes, the latency and load
measurements, the crash trials, and the report."""
