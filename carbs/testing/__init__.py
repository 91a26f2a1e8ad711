"""Ground-truth test problems for benchmarks and validation (no production code depends on them)."""
