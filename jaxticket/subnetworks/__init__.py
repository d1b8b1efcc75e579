"""Subnetworks with guarantees that are built or selected rather than
trained: random subset-sum constructions of strong tickets
(:mod:`~jaxticket.subnetworks.subset_sum`) and greedy forward selection of
units (:mod:`~jaxticket.subnetworks.greedy`). Pure NumPy/JAX on explicit
weight matrices; written for one network (experiments map them over
seeds)."""
