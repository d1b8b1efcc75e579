"""``jaxticket theory``: greedy forward selection (Ye et al. 2020) and the teacher-student sample complexity of pruned networks (Zhang et al. 2021)."""
