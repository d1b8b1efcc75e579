"""Dynamic sparse training vs lottery tickets (``jaxticket dst``)."""
