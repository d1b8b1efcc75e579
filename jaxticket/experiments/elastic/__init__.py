"""``jaxticket elastic``: elastic lottery tickets across depths."""
