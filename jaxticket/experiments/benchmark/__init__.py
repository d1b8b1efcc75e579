"""``jaxticket benchmark``: the benchmark lottery over lottery-ticket methods."""
