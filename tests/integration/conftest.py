"""Integration tests run against the real stack: its fixtures (`stack`, `harness`) live in
tests/conftest.py, shared with the dashboard tests so one test session starts one stack.
"""
