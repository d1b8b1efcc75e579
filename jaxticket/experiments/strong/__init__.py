"""``jaxticket strong``: strong lottery tickets (edge-popup, structured) and strong tickets by construction (random subset sum)."""
