"""experiments/imp."""
