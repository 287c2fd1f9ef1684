"""Benchmarks behind ``plantwatch bench``; each reports and never fails on a slow machine."""
