"""experiments/sweep."""
