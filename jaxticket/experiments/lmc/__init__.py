"""Linear mode connectivity and instability (``jaxticket lmc``)."""
