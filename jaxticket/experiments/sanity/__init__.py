"""experiments/sanity."""
