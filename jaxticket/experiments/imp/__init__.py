"""IMP with rewinding (``jaxticket imp``) and dense training (``train``)."""
