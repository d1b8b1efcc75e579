"""Graph lottery tickets and spectral pruning offline: GCN (2 layers, 64
hidden) on a homophilous and a heterophilous stochastic block model (300
nodes, 3 classes), Zachary's karate club and the left Drosophila
mushroom-body connectome (graspologic's files; `pip install --no-deps
graspologic`), 2 random node splits x 2 seeds; UGS for 5 rounds (5% of the
edges, 20% of the weights per round) with its controls, random pruning and
the spectral edge mask; spectral deletion / addition at depths 2, 4, 8.
Minutes on a 2-core CPU (README, "Graph lottery tickets").

  jaxticket graph --config configs/graph.py
  jaxticket graph --config configs/graph.py:tiny   # karate only, < 1 min
"""

from jaxticket.config import default_config


def get_config(arg=None):
  return default_config(arg or None)
