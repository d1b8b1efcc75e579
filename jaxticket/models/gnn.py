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

Propagation is a dense (N, N) matmul for graphs of at most
``dense_nodes`` nodes and segment sums over the edge list above
(:data:`DENSE_NODES`); both give the same result (tested).
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
#: Graphs of at most this many nodes propagate with a dense (N, N) matrix
#: (one scatter of E scalars, then matmuls); larger ones with segment sums
#: over the edge list. Same result; on XLA:CPU scattering E x features
#: values per layer was the bottleneck (Drosophila, 209 nodes, 5559 edges:
#: dense is much faster), while a dense matrix per replica would not fit
#: for Cora-sized graphs.
DENSE_NODES = 1024


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


def dense_matrix(senders: jax.Array, receivers: jax.Array,
                 edge_coef: jax.Array, self_coef: jax.Array | None,
                 num_nodes: int) -> jax.Array:
  """The (N, N) matrix of :func:`propagate`: ``c_ij`` at both (i, j) and
  (j, i), ``self_coef`` on the diagonal."""
  a = jnp.zeros((num_nodes, num_nodes), edge_coef.dtype)
  if self_coef is not None:
    a = a + jnp.diag(self_coef)
  a = a.at[senders, receivers].add(edge_coef)
  return a.at[receivers, senders].add(edge_coef)


def normalized_adjacency(senders: jax.Array, receivers: jax.Array,
                         weights: jax.Array, num_nodes: int) -> jax.Array:
  """The dense (N, N) ``A_hat`` (for tests and small graphs)."""
  edge, loop = gcn_coefficients(senders, receivers, weights, num_nodes)
  return dense_matrix(senders, receivers, edge, loop, num_nodes)


def propagator(senders: jax.Array, receivers: jax.Array,
               edge_coef: jax.Array, self_coef: jax.Array | None,
               num_nodes: int, dense_nodes: int = DENSE_NODES):
  """``h -> propagate(h, ...)``, through a dense matrix built once when
  the graph has at most ``dense_nodes`` nodes."""
  if num_nodes <= dense_nodes:
    a = dense_matrix(senders, receivers, edge_coef, self_coef, num_nodes)
    return lambda h: a @ h
  return lambda h: propagate(h, senders, receivers, edge_coef, self_coef)


class GCNConv(nn.Module):
  """One GCN layer: ``A_hat (H W)`` (no bias, as UGS); ``prop`` applies
  ``A_hat`` (:func:`propagator`)."""
  features: int

  @nn.compact
  def __call__(self, h, prop):
    return prop(nn.Dense(self.features, use_bias=False, name="dense")(h))


class SAGEConv(nn.Module):
  """One GraphSAGE layer (mean aggregator): ``W_self h_i + W_nbr
  sum_j w_ij h_j / sum_j w_ij`` (+ bias on the neighbour term, as PyG);
  ``mean`` applies the weighted neighbour mean (:func:`propagator`)."""
  features: int

  @nn.compact
  def __call__(self, h, mean):
    return (nn.Dense(self.features, name="neighbors")(mean(h))
            + nn.Dense(self.features, use_bias=False, name="self")(h))


def neighbour_mean(senders: jax.Array, receivers: jax.Array,
                   weights: jax.Array, num_nodes: int,
                   dense_nodes: int = DENSE_NODES):
  """``h -> sum_j w_ij h_j / sum_j w_ij`` (0 for a node without edges)."""
  deg = jax.ops.segment_sum(weights, senders, num_nodes) + \
      jax.ops.segment_sum(weights, receivers, num_nodes)
  inv = 1.0 / jnp.maximum(deg, MIN_DEGREE)
  if num_nodes <= dense_nodes:
    a = dense_matrix(senders, receivers, weights, None, num_nodes)
    a = a * inv[:, None]
    return lambda h: a @ h
  return lambda h: propagate(h, senders, receivers, weights, None) * \
      inv[:, None]


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
  dense_nodes: int = DENSE_NODES

  @nn.compact
  def __call__(self, x, train: bool = False, context: Any = None):
    del train
    feats, s, r = _context(context, "GCN")
    n = feats.shape[0]
    edge, loop = gcn_coefficients(s, r, _edge_weights(self, s), n)
    prop = propagator(s, r, edge, loop, n, self.dense_nodes)
    h = feats
    for i in range(self.depth - 1):
      h = nn.relu(GCNConv(self.hidden, name=f"GCNConv_{i}")(h, prop))
    self.sow("intermediates", "hidden", h)
    out = GCNConv(self.num_classes, name="head")(h, prop)
    return out[jnp.asarray(x).astype(jnp.int32)]


class GraphSAGE(nn.Module):
  """``depth`` GraphSAGE layers (mean aggregator), ReLU between; the last
  hidden layer's output is sown as ``intermediates/hidden``."""
  num_classes: int
  hidden: int = 64
  depth: int = 2
  dense_nodes: int = DENSE_NODES

  @nn.compact
  def __call__(self, x, train: bool = False, context: Any = None):
    del train
    feats, s, r = _context(context, "GraphSAGE")
    mean = neighbour_mean(s, r, _edge_weights(self, s), feats.shape[0],
                          self.dense_nodes)
    h = feats
    for i in range(self.depth - 1):
      h = nn.relu(SAGEConv(self.hidden, name=f"SAGEConv_{i}")(h, mean))
    self.sow("intermediates", "hidden", h)
    out = SAGEConv(self.num_classes, name="head")(h, mean)
    return out[jnp.asarray(x).astype(jnp.int32)]


#: name -> constructor(num_classes, hidden, depth).
GNNS: dict[str, Callable[..., nn.Module]] = {"gcn": GCN, "sage": GraphSAGE}

#: The leaves a graph ticket's mask covers: every kernel and the edges.
GRAPH_PRUNABLE = r"(^|/)(kernel|edges)$"
#: The edge leaf alone.
EDGES = r"(^|/)edges$"


def build_gnn(name: str, num_classes: int, hidden: int = 64,
              depth: int = 2, dense_nodes: int = DENSE_NODES,
              key: str = "graph.models") -> nn.Module:
  """GNN ``name`` of :data:`GNNS`."""
  check_choice(key, name, GNNS, "graph model")
  if depth < 1:
    raise ValueError(f"graph.depth must be >= 1; got {depth}.")
  return GNNS[name](num_classes=num_classes, hidden=hidden, depth=depth,
                    dense_nodes=dense_nodes)


__all__ = ["GCN", "GraphSAGE", "GCNConv", "SAGEConv", "GNNS", "build_gnn",
           "gcn_coefficients", "propagate", "normalized_adjacency",
           "dense_matrix", "propagator", "neighbour_mean",
           "GRAPH_PRUNABLE", "EDGES", "MIN_DEGREE", "DENSE_NODES"]
