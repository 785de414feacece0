"""The configuration test matrix: cases as data, run against real receivers, reported."""
