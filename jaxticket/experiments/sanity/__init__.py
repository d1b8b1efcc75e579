"""Ma et al. (2021) sanity checks (``jaxticket sanity``): controls, verdict, diagnostics."""
