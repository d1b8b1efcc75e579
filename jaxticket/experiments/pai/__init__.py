"""``jaxticket pai``: pruning at initialization with Su et al.'s checks."""
