"""Benchmarks of the interruptible thread agent on loopback (`make bench`, `python -m bench`)."""
