"""Task-incremental subnetworks (``jaxticket continual``, issue 18)."""
