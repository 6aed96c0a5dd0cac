"""Shaping the work across every daemon: concurrency caps (caps.py)."""
