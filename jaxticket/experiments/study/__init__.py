"""The sanity check per value of one config key (``jaxticket study``)."""
