"""Graph neural networks for full-batch node classification, with the
adjacency as a maskable leaf.

The graph comes in as the data's shared ``context`` (see
:class:`jaxticket.core.step.DataArrays`): ``features`` (N, F),
``senders`` and ``receivers`` (E,), each undirected edge ONCE. The model's
input ``x`` holds the indices of the nodes whose logits are wanted; every
call propagates over the whole graph (as GCN and UGS train) and returns
``logits[x]``.

Every model has a parameter ``edges`` (E,), initialized to ones: the
weight of each undirected edge, used in both directions, so any edge mask
or soft edge mask on it keeps the adjacency symmetric by construction.
A boolean mask on ``edges`` (``masks.prunable`` matching ``(^|/)edges$``)
prunes edges exactly like weights; UGS trains it as its soft adjacency mask
(:mod:`jaxticket.models.soft_mask`); otherwise it stays frozen at 1.
Self-loops are not edges: they are never masked.

- :class:`GCN` (Kipf & Welling, ICLR 2017, Eq. 2): ``H' = A_hat H W`` with
  ``A_hat = D~^-1/2 (A_w + I) D~^-1/2``, ``A_w`` the (masked) weighted
  adjacency and ``D~`` its degrees plus one. As UGS's ``net_gcn``
  (Chen et al. 2021, code): the mask multiplies the raw adjacency *before*
  self-loops and normalization, the layers have no bias, ReLU between
  layers. (UGS also uses dropout 0.5; the platform's step passes no dropout
  key, so there is none here.)
- :class:`GraphSAGE` (Hamilton et al., NeurIPS 2017, mean aggregator as in
  PyTorch Geometric's SAGEConv): ``h_i' = W_self h_i + W_nbr mean_w(h_j)``,
  the mean weighted by the (masked) edge weights.

With every edge masked both reduce to their self term: GCN to ``H W``
(A_hat = I), GraphSAGE to ``H W_self``.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxticket.core.checks import check_choice

#: Smallest degree used in a normalization (soft UGS masks may drive edge
#: weights to or below zero; a degree is at least its self-loop otherwise).
MIN_DEGREE = 1e-6


def _context(context: Any, who: str) -> tuple[jax.Array, jax.Array,
                                              jax.Array]:
  if context is None:
    raise ValueError(f"{who} needs a graph: train it on a graph dataset "
                     "(jaxticket.data.graphs.node_dataset), whose context "
                     "holds features, senders and receivers.")
  return context["features"], context["senders"], context["receivers"]


def gcn_coefficients(senders: jax.Array, receivers: jax.Array,
                     weights: jax.Array, num_nodes: int
                     ) -> tuple[jax.Array, jax.Array]:
  """(edge coefficients (E,), self-loop coefficients (N,)) of
  ``D~^-1/2 (A_w + I) D~^-1/2`` for undirected edges with ``weights``:
  ``w_ij / sqrt(d_i d_j)`` and ``1 / d_i``, with ``d_i = 1 + sum_j w_ij``."""
  deg = 1.0 + jax.ops.segment_sum(weights, senders, num_nodes) + \
      jax.ops.segment_sum(weights, receivers, num_nodes)
  deg = jnp.maximum(deg, MIN_DEGREE)
  inv_sqrt = jax.lax.rsqrt(deg)
  return weights * inv_sqrt[senders] * inv_sqrt[receivers], 1.0 / deg


def propagate(h: jax.Array, senders: jax.Array, receivers: jax.Array,
              edge_coef: jax.Array, self_coef: jax.Array | None) -> jax.Array:
  """``out_i = self_coef_i h_i + sum_j c_ij h_j`` over both directions of
  every undirected edge (no self term if ``self_coef`` is None)."""
  n = h.shape[0]
  out = jax.ops.segment_sum(edge_coef[:, None] * h[receivers], senders, n)
  out = out + jax.ops.segment_sum(edge_coef[:, None] * h[senders],
                                  receivers, n)
  return out if self_coef is None else out + self_coef[:, None] * h


def normalized_adjacency(senders: jax.Array, receivers: jax.Array,
                         weights: jax.Array, num_nodes: int) -> jax.Array:
  """The dense (N, N) ``A_hat`` (for tests and small graphs)."""
  edge, loop = gcn_coefficients(senders, receivers, weights, num_nodes)
  a = jnp.diag(loop)
  a = a.at[senders, receivers].add(edge)
  return a.at[receivers, senders].add(edge)


class GCNConv(nn.Module):
  """One GCN layer: ``A_hat (H W)`` (no bias, as UGS)."""
  features: int

  @nn.compact
  def __call__(self, h, senders, receivers, edge_coef, self_coef):
    h = nn.Dense(self.features, use_bias=False, name="dense")(h)
    return propagate(h, senders, receivers, edge_coef, self_coef)


class SAGEConv(nn.Module):
  """One GraphSAGE layer (mean aggregator): ``W_self h_i + W_nbr
  sum_j w_ij h_j / sum_j w_ij`` (+ bias on the neighbour term, as PyG)."""
  features: int

  @nn.compact
  def __call__(self, h, senders, receivers, weights):
    n = h.shape[0]
    deg = jax.ops.segment_sum(weights, senders, n) + jax.ops.segment_sum(
        weights, receivers, n)
    mean = propagate(h, senders, receivers, weights, None) / jnp.maximum(
        deg, MIN_DEGREE)[:, None]
    return (nn.Dense(self.features, name="neighbors")(mean)
            + nn.Dense(self.features, use_bias=False, name="self")(h))


def _edge_weights(module: nn.Module, senders: jax.Array) -> jax.Array:
  return module.param("edges", nn.initializers.ones, (senders.shape[0],),
                      jnp.float32)


class GCN(nn.Module):
  """``depth`` GCN layers (``depth - 1`` hidden of width ``hidden``, then
  the ``head`` to the classes), ReLU between. The last hidden layer's
  output is sown as ``intermediates/hidden`` (over-smoothing measures)."""
  num_classes: int
  hidden: int = 64
  depth: int = 2

  @nn.compact
  def __call__(self, x, train: bool = False, context: Any = None):
    del train
    feats, s, r = _context(context, "GCN")
    edge, loop = gcn_coefficients(s, r, _edge_weights(self, s),
                                  feats.shape[0])
    h = feats
    for i in range(self.depth - 1):
      h = nn.relu(GCNConv(self.hidden, name=f"GCNConv_{i}")(h, s, r, edge,
                                                            loop))
    self.sow("intermediates", "hidden", h)
    out = GCNConv(self.num_classes, name="head")(h, s, r, edge, loop)
    return out[jnp.asarray(x).astype(jnp.int32)]


class GraphSAGE(nn.Module):
  """``depth`` GraphSAGE layers (mean aggregator), ReLU between; the last
  hidden layer's output is sown as ``intermediates/hidden``."""
  num_classes: int
  hidden: int = 64
  depth: int = 2

  @nn.compact
  def __call__(self, x, train: bool = False, context: Any = None):
    del train
    feats, s, r = _context(context, "GraphSAGE")
    w = _edge_weights(self, s)
    h = feats
    for i in range(self.depth - 1):
      h = nn.relu(SAGEConv(self.hidden, name=f"SAGEConv_{i}")(h, s, r, w))
    self.sow("intermediates", "hidden", h)
    out = SAGEConv(self.num_classes, name="head")(h, s, r, w)
    return out[jnp.asarray(x).astype(jnp.int32)]


#: name -> constructor(num_classes, hidden, depth).
GNNS: dict[str, Callable[..., nn.Module]] = {"gcn": GCN, "sage": GraphSAGE}

#: The leaves a graph ticket's mask covers: every kernel and the edges.
GRAPH_PRUNABLE = r"(^|/)(kernel|edges)$"
#: The edge leaf alone.
EDGES = r"(^|/)edges$"


def build_gnn(name: str, num_classes: int, hidden: int = 64,
              depth: int = 2, key: str = "graph.models") -> nn.Module:
  """GNN ``name`` of :data:`GNNS`."""
  check_choice(key, name, GNNS, "graph model")
  if depth < 1:
    raise ValueError(f"graph.depth must be >= 1; got {depth}.")
  return GNNS[name](num_classes=num_classes, hidden=hidden, depth=depth)


__all__ = ["GCN", "GraphSAGE", "GCNConv", "SAGEConv", "GNNS", "build_gnn",
           "gcn_coefficients", "propagate", "normalized_adjacency",
           "GRAPH_PRUNABLE", "EDGES", "MIN_DEGREE"]
