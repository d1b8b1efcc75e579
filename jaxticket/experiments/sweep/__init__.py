"""Grids of configs as few programs as possible (``jaxticket sweep``)."""
