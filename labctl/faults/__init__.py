"""Fault injection: a table of faults (name → apply, verify, heal) that work in both runtimes."""
