"""Property-based tests: invariants that must hold for every input, not just examples."""
