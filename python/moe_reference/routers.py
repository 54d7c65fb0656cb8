"""Router weights and gating: the semantics of ``moe.topk_gating``,
``moe.uniform_gating`` and the router weights of ``moe-mix-experts`` and
``moe-mix-adapters``.

Router weights are float32 numpy arrays ``[E, in]`` (one row per expert);
logits are ``x W^T (+ b)``. Gating is computed in float64 from float32
inputs and weights, so the reference is as exact as the data allows.
"""

import math

import numpy as np
import torch

from . import rng

# Router sites of moe-mix-experts, with the site number p of the seed
# ``seed + 1000 p + l`` of projection routers.
PROJECTION_SITES = {"gate_proj": 1, "up_proj": 2, "down_proj": 3,
                    "q_proj": 4, "k_proj": 5, "v_proj": 6}
EXPERT_ROUTER_MODES = ("gateless", "noisy", "uniform-random", "hidden",
                       "cheap-embed", "base-init", "given")
ADAPTER_ROUTER_MODES = ("noisy", "uniform-random", "zero", "given")
SCORINGS = ("softmax", "sigmoid")
BASE_INIT_PENALTY = -30.0


def site_seed(seed, site, layer):
    """Seed of a random router of moe-mix-experts: the FFN router of layer
    l uses ``seed + l``, projection p (1 gate_proj, 2 up_proj, 3 down_proj,
    4 q_proj, 5 k_proj, 6 v_proj) ``seed + 1000 p + l``, the global router
    ``seed``. ``site`` is "ffn", "global" or a projection name."""
    if site == "ffn":
        return seed + layer
    if site == "global":
        return seed
    return seed + 1000 * PROJECTION_SITES[site] + layer


def shared_gate_seed(seed, layer):
    """Seed of the noisy shared-expert gate row of layer l: ``seed + 7000 + l``."""
    return seed + 7000 + layer


def given_key(site, layer):
    """Key of a router in the safetensors file of router=given:
    ``model.layers.{l}.block_sparse_moe.gate.weight`` (FFN, Mixtral's name),
    ``model.layers.{l}.mlp.{gate,up,down}_proj.router.weight``,
    ``model.layers.{l}.self_attn.{q,k,v}_proj.router.weight``,
    ``model.router.weight`` (global)."""
    if site == "ffn":
        return f"model.layers.{layer}.block_sparse_moe.gate.weight"
    if site == "global":
        return "model.router.weight"
    block = "mlp" if site in ("gate_proj", "up_proj", "down_proj") else "self_attn"
    return f"model.layers.{layer}.{block}.{site}.router.weight"


def shared_gate_key(layer):
    """Key of the shared-expert gate row (Qwen2-MoE's name)."""
    return f"model.layers.{layer}.mlp.shared_expert_gate.weight"


def normalize_rows(matrix):
    """``moe.normalize_rows``: every row (last dimension) scaled to unit L2
    norm in float64; all-zero rows stay zero. Returns float32."""
    matrix = np.asarray(matrix, dtype=np.float64)
    norms = np.sqrt((matrix * matrix).sum(axis=-1, keepdims=True))
    safe = np.where(norms == 0, 1.0, norms)
    return (matrix / safe).astype(np.float32)


def embedding_prototypes(table, token_ids):
    """``moe.embedding_prototypes``: row e is the L2-normalised mean of the
    L2-normalised rows ``table[t]``, t in ``token_ids[e]`` (a repeated id
    counts as often as it is listed). Computed in float64, returns float32."""
    table = np.asarray(table, dtype=np.float64)
    rows = []
    for ids in token_ids:
        if not ids:
            raise ValueError("cheap-embed: every expert needs at least one token")
        for t in ids:
            if not 0 <= t < table.shape[0]:
                raise ValueError(f"cheap-embed: token id {t} is outside the "
                                 f"vocabulary of {table.shape[0]}")
        unit = normalize_rows(table[list(ids)]).astype(np.float64)
        rows.append(unit.mean(axis=0))
    return normalize_rows(np.stack(rows))


def parse_token_lists(text):
    """Parses cheap-embed-tokens: '5,17;8;9,2' -> [[5, 17], [8], [9, 2]]."""
    lists = []
    for part in text.split(";"):
        ids = [int(t) for t in part.split(",") if t.strip()]
        if any(t < 0 for t in ids):
            raise ValueError(f"cheap-embed-tokens: negative token id in {text!r}")
        lists.append(ids)
    return lists


def noisy(seed, rows, cols, std):
    """A noisy router: ``moe.random_normal`` with mean 0, std ``std``."""
    return rng.random_normal(seed, (rows, cols), 0.0, std)


def uniform_random(seed, rows, cols):
    """``moe.random_uniform`` in [-1/sqrt(cols), 1/sqrt(cols)] (nn.Linear's
    default initialisation)."""
    bound = 1.0 / math.sqrt(cols)
    return rng.random_uniform(seed, (rows, cols), -bound, bound)


def base_init(rows, cols):
    """The base-init router: zero weight, bias 0 for expert 0 and -30 for
    the others (every token goes to expert 0)."""
    bias = np.full(rows, BASE_INIT_PENALTY, dtype=np.float32)
    bias[0] = 0.0
    return np.zeros((rows, cols), np.float32), bias


def read_given(tensors, key, shape, path):
    """The tensor ``key`` of a given router file, checked to have ``shape``."""
    if key not in tensors:
        raise KeyError(f"{path}: no tensor '{key}' (expected shape {list(shape)})")
    value = tensors[key]
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{path}: tensor '{key}' has shape {list(value.shape)}"
                         f" but the router needs {list(shape)}")
    return np.asarray(value, dtype=np.float32)


def topk_gating(logits, k, scoring, renormalize):
    """``moe.topk_gating`` with score_before_topk and no noise, as
    moe-mix-experts builds it: scores are ``softmax`` over all E logits or
    the ``sigmoid`` of each; the k best scores are chosen per token, ties to
    the lower expert index; ``renormalize`` divides the k weights by their
    sum. ``logits`` is a float64 tensor ``[..., E]``; returns (weights
    float64 ``[..., k]``, indices int64 ``[..., k]``)."""
    if scoring == "softmax":
        scores = torch.softmax(logits, dim=-1)
    elif scoring == "sigmoid":
        scores = torch.sigmoid(logits)
    else:
        raise ValueError(f"unknown scoring '{scoring}' (softmax or sigmoid)")
    weights, indices = top_scores(scores, k)
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, indices


def top_scores(scores, k):
    """The k highest scores per row and their indices; equal scores are
    ordered by index (a stable descending sort)."""
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices
    indices = order[..., :k]
    return torch.gather(scores, -1, indices), indices


def uniform_gating(shape, experts):
    """``moe.uniform_gating``: every expert, in order, with weight 1/E."""
    weights = torch.full((*shape, experts), 1.0 / experts, dtype=torch.float64)
    indices = torch.arange(experts).expand(*shape, experts)
    return weights, indices


def adapter_scores(logits, normalization, top_k):
    """Adapter weights of ``moe.mixture_of_lora`` as a dense ``[..., E]``
    float64 tensor: ``sigmoid`` scores each adapter on its own, ``softmax``
    over all E; with ``top_k`` = 0 every adapter keeps its score, otherwise
    only the ``top_k`` highest (ties to the lower index) and, with softmax,
    those are renormalised to sum to one. Unchosen adapters get 0."""
    if normalization == "softmax":
        scores = torch.softmax(logits, dim=-1)
    elif normalization == "sigmoid":
        scores = torch.sigmoid(logits)
    else:
        raise ValueError(f"unknown normalization '{normalization}' "
                         "(sigmoid or softmax)")
    experts = scores.shape[-1]
    if top_k == 0 or top_k >= experts:
        return scores
    kept, indices = top_scores(scores, top_k)
    if normalization == "softmax":
        kept = kept / kept.sum(dim=-1, keepdim=True)
    return torch.zeros_like(scores).scatter(-1, indices, kept)
