"""``jaxticket graph``: graph lottery tickets (UGS: joint edge and weight masks) and spectral edge pruning (greedy spectral-gap deletion / addition) on offline graphs."""
