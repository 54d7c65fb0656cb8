"""Per-domain perplexity and routing statistics of one model.

Perplexity of a domain is exp(total negative log-likelihood / scored
tokens) over all its files (token-weighted), on the windows of
moe_text.windows. Routing statistics count, in every routed layer, the
routing of the tokens whose next-token predictions are scored (each token
of the text once, the first of each unscored window position excepted).
"""

import dataclasses
import math

import numpy as np
import torch

from moe_text import scoring_windows
from moe_train.common import FAMILIES
from moe_train.routers import moe_layout

from .models import ModelError


@dataclasses.dataclass
class LayerRouting:
    layer: int
    selections: np.ndarray     # [E] times each expert was among the top k
    probability_sum: np.ndarray  # [E] sum of router probabilities
    entropy_sum: float         # sum over tokens of the routing entropy (nats)
    tokens: int

    def summary(self):
        experts = len(self.selections)
        share = self.selections / max(self.selections.sum(), 1)
        entropy = self.entropy_sum / max(self.tokens, 1)
        return {
            "layer": self.layer,
            "expert_share": share.tolist(),
            "mean_probability": (self.probability_sum / max(self.tokens, 1)).tolist(),
            "entropy": entropy,
            "normalized_entropy": entropy / math.log(experts) if experts > 1 else 0.0,
            "max_over_mean_load": float(share.max() * experts),
        }


@dataclasses.dataclass
class DomainResult:
    tokens: int = 0
    nll: float = 0.0
    routing: list = None   # LayerRouting per routed layer, or None

    @property
    def perplexity(self):
        return math.exp(self.nll / self.tokens)


class RoutingRecorder:
    """Forward hooks on the routers of a transformers MoE model that keep
    the last forward's logits and top-k indices of every routed layer."""

    def __init__(self, model, source):
        self.layout = moe_layout(model, source)
        self.captured = {}
        self.handles = [site.router.register_forward_hook(self._hook(site.layer))
                        for site in self.layout.sites]

    def _hook(self, layer):
        def hook(module, inputs, output):
            self.captured[layer] = (output[0].detach(), output[2].detach())
        return hook

    def new_domain(self):
        experts = self.layout.experts
        return [LayerRouting(site.layer, np.zeros(experts, np.int64),
                             np.zeros(experts), 0.0, 0)
                for site in self.layout.sites]

    def accumulate(self, stats, rows):
        """Adds the captured routing of the flattened token rows `rows`."""
        experts = self.layout.experts
        for entry in stats:
            logits, indices = self.captured.pop(entry.layer)
            logits = logits.reshape(-1, experts)[rows].double()
            indices = indices.reshape(-1, indices.shape[-1])[rows]
            probabilities = torch.softmax(logits, dim=-1)
            entropy = -(probabilities * torch.log(probabilities.clamp_min(1e-300))).sum(-1)
            entry.selections += torch.bincount(indices.reshape(-1).cpu(),
                                               minlength=experts).numpy()
            entry.probability_sum += probabilities.sum(0).cpu().numpy()
            entry.entropy_sum += float(entropy.sum())
            entry.tokens += int(rows.numel())

    def close(self):
        for handle in self.handles:
            handle.remove()


def _batches(windows, batch_size):
    """Windows grouped by (length, first scored position), so that a batch
    is one rectangular tensor, in batches of at most batch_size."""
    groups = {}
    for window in windows:
        key = (window.end - window.begin, window.first - window.begin)
        groups.setdefault(key, []).append(window)
    for (length, offset), group in groups.items():
        for start in range(0, len(group), batch_size):
            yield length, offset, group[start:start + batch_size]


def evaluate(model, domain_tokens, context, stride, limit, batch_size,
             progress=None):
    """{domain: DomainResult} for one loaded model; domain_tokens holds the
    token ids of each file, from this model's tokenizer."""
    if model.max_positions and context > model.max_positions:
        raise ModelError(f"{model.path}: --context {context} exceeds its "
                         f"max_position_embeddings {model.max_positions}")
    recorder = None
    if model.kind == "hf":
        family = getattr(model.base_model().config, "model_type", None)
        if family in FAMILIES:
            recorder = RoutingRecorder(model.base_model(), model.path)
    results = {}
    try:
        for domain, files in domain_tokens.items():
            result = DomainResult()
            if recorder:
                result.routing = recorder.new_domain()
            remaining = limit
            for ids in files:
                if remaining is not None and remaining <= 0:
                    break
                if model.vocab_size and ids.max() >= model.vocab_size:
                    raise ModelError(
                        f"{model.path}: the tokenizer gives token id "
                        f"{int(ids.max())} but the model has "
                        f"{model.vocab_size} logits")
                windows = scoring_windows(len(ids), context, stride, remaining)
                for length, offset, group in _batches(windows, batch_size):
                    batch = np.stack([ids[w.begin:w.end] for w in group])
                    logits = model.logits(batch)
                    predictions = logits[:, offset - 1:length - 1]
                    targets = torch.from_numpy(batch[:, offset:]).to(logits.device)
                    nll = torch.nn.functional.cross_entropy(
                        predictions.reshape(-1, predictions.shape[-1]),
                        targets.reshape(-1), reduction="none")
                    result.nll += float(nll.double().sum())
                    result.tokens += int(targets.numel())
                    if recorder:
                        positions = torch.arange(offset - 1, length - 1)
                        rows = (torch.arange(len(group))[:, None] * length
                                + positions[None, :]).reshape(-1)
                        recorder.accumulate(result.routing,
                                            rows.to(logits.device))
                    if progress:
                        progress(int(targets.numel()))
                if remaining is not None:
                    remaining -= sum(w.scored for w in windows)
            results[domain] = result
    finally:
        if recorder:
            recorder.close()
    return results


def routing_layout(model):
    """(experts, k) of an MoE model, or None."""
    if model.kind != "hf":
        return None
    base = model.base_model()
    if getattr(base.config, "model_type", None) not in FAMILIES:
        return None
    layout = moe_layout(base, model.path)
    return layout.experts, layout.top_k
