"""Tests written to kill the mutants that mutation testing (tests/README.md) found alive:
each checks a behaviour the module tests left open."""
