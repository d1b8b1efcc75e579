"""experiments/lmc."""
