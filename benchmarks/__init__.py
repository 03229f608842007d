"""Benchmarks: Blockwork's cost as ratios against plain PyTorch and peer tools (see run.py)."""
