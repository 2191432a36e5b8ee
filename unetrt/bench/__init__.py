"""Benchmark harness: latency and parity across backends."""
