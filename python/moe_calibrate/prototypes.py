"""Router prototypes from prompts: what moe-mix-experts' data-derived
routers read.

- `hidden_prototypes`: per layer and expert, the mean over the expert's
  positive prompts of the hidden state entering the layer (pooled over the
  prompt's positions), minus the same mean over its negative prompts. The
  `prototypes` tensor [layers, experts, hidden] of `router=hidden`, whose
  router rows are these rows L2-normalised: mergekit-moe's `gate_mode:
  hidden` (last position) or `hidden_avg` (mean-padded pooling).
- `cheap_embed_prototypes`: mergekit-moe's `gate_mode: cheap_embed`: the sum
  of the raw token embeddings over every prompt's tokens (its bos included,
  padding excluded), L2-normalised, minus the same direction of the
  negative prompts; the same row for every layer. As prototypes, router=hidden
  normalises them into exactly mergekit's rows.
- `cheap_embed_token_ids`: the token ids of each expert's prompts for
  moe-mix-experts' own `router=cheap-embed` (the normalised mean of the
  normalised embedding rows).
- `router_rows`: prototypes as the normalised rows of `router=given`, with
  one prompt set as a Qwen2-MoE shared expert's gate.
"""

import torch

from . import engine
from .checkpoint import Checkpoint
from .errors import CalibrationError
from .prompts import check_sets, check_token_sets, encode, load_tokenizer, token_ids


# Padded tokens per batch when batches are ours to choose: large enough for
# matrix products that read each weight once for many tokens.
TOKEN_BUDGET = 4096


def _batches_by_length(tokenizer, groups):
    """All prompts of all groups in batches of similar lengths, at most
    TOKEN_BUDGET padded tokens each (one prompt alone may exceed it): a
    list of (encoded batch, [(group, position in group)])."""
    prompts = [(len(tokenizer(prompt, add_special_tokens=False)["input_ids"]), g, i)
               for g, group in enumerate(groups) for i, prompt in enumerate(group)]
    prompts.sort()
    batches, current = [], []
    for length, g, i in prompts:
        # Sorted by length: the newest prompt is the longest of the batch.
        if current and (len(current) + 1) * (length + 1) > TOKEN_BUDGET:
            batches.append(current)
            current = []
        current.append((g, i))
    if current:
        batches.append(current)
    return [(encode(tokenizer, [groups[g][i] for g, i in members]), members)
            for members in batches]


def hidden_prototypes(base_dir, sets, pooling="last", dtype="float32", progress=None):
    """[layers, len(sets), hidden] float32 (see the module docstring).

    In bfloat16, and for 'mean-padded' pooling (which averages the padding
    too), prompts run in mergekit-moe's batches (an expert's positive
    prompts, then its negative ones) and means and differences are rounded
    to bfloat16 as mergekit-moe computes them, so that its rows are
    reproduced bit for bit. Otherwise prompts are batched by length across
    experts (the padding cannot change a prompt's tokens, which attend to
    their own positions only) and averaged in float64."""
    check_sets(sets)
    tokenizer = load_tokenizer(base_dir)
    groups = [group for prompt_set in sets
              for group in (prompt_set.positive, prompt_set.negative)]
    if dtype == "bfloat16" or pooling == "mean-padded":
        used = [g for g, group in enumerate(groups) if group]
        pooled = engine.layer_inputs(base_dir, [encode(tokenizer, groups[g]) for g in used],
                                     pooling, dtype, progress)
        means = {}
        for g, states in zip(used, pooled):
            means[g] = states.sum(dim=1) / states.shape[1] if dtype == "bfloat16" \
                else states.double().mean(dim=1)
    else:
        batches = _batches_by_length(tokenizer, groups)
        pooled = engine.layer_inputs(base_dir, [batch for batch, _ in batches],
                                     pooling, dtype, progress)
        rows = {}
        for (_, members), states in zip(batches, pooled):
            for column, (g, _) in enumerate(members):
                rows.setdefault(g, []).append(states[:, column].double())
        means = {g: torch.stack(vectors).mean(dim=0) for g, vectors in rows.items()}
    prototypes = []
    for index in range(len(sets)):
        positive, negative = means[2 * index], means.get(2 * index + 1)
        prototypes.append(positive - negative if negative is not None else positive)
    return torch.stack(prototypes, dim=1).float()


def _unit(vector):
    return vector / vector.norm(p=2, dim=-1, keepdim=True).clamp(min=1e-8)


def cheap_embed_prototypes(base_dir, sets):
    """[layers, len(sets), hidden] float32: mergekit-moe's cheap_embed
    directions (see the module docstring), computed in float64."""
    check_sets(sets)
    tokenizer = load_tokenizer(base_dir)
    model = engine.empty_model(base_dir, torch.float32)
    table_name = next(name for name, module in model.named_modules()
                      if module is model.get_input_embeddings()) + ".weight"
    table = Checkpoint(base_dir).read([table_name])[table_name].double()

    def direction(prompts):
        batch = encode(tokenizer, prompts)
        ids = batch["input_ids"]
        if int(ids.max()) >= table.shape[0]:
            raise CalibrationError(
                f"{base_dir}: the tokenizer gives token id {int(ids.max())}, "
                f"outside the embedding table '{table_name}' ({table.shape[0]} rows)")
        mask = batch["attention_mask"].unsqueeze(-1).double()
        return _unit((table[ids] * mask).sum(dim=(0, 1)))

    rows = []
    for prompt_set in sets:
        row = direction(prompt_set.positive)
        if prompt_set.negative:
            row = row - direction(prompt_set.negative)
        rows.append(row)
    layers = model.config.num_hidden_layers
    return torch.stack(rows).unsqueeze(0).expand(layers, -1, -1).float().contiguous()


def cheap_embed_token_ids(base_dir, sets):
    """Per set, the token ids of its positive prompts (special tokens left
    out: every expert would share them)."""
    check_sets(sets)
    tokenizer = load_tokenizer(base_dir)
    check_token_sets(sets)
    lists = []
    for prompt_set in sets:
        ids = token_ids(tokenizer, prompt_set.positive)
        if not ids:
            raise CalibrationError(
                f"expert '{prompt_set.name}': its prompts have no tokens "
                "besides special tokens")
        lists.append(ids)
    return lists


def router_rows(prototypes, names, shared=None, dtype="float32"):
    """The tensors of router=given from prototypes [layers, E, hidden]: per
    layer `model.layers.{l}.block_sparse_moe.gate.weight`, the L2-normalised
    rows of the routed experts, and with `shared` (the name of a set),
    `model.layers.{l}.mlp.shared_expert_gate.weight`, that set's normalised
    row. Rows are normalised in `dtype` arithmetic (bfloat16 as mergekit)
    and stored as float32."""
    routed = [i for i, name in enumerate(names) if name != shared]
    if shared is not None and len(routed) == len(names):
        raise CalibrationError(f"--shared-expert {shared}: no prompt set of that name")
    rows = _unit(prototypes.to(engine.DTYPES[dtype])).float()
    tensors = {}
    for layer in range(prototypes.shape[0]):
        tensors[f"model.layers.{layer}.block_sparse_moe.gate.weight"] = \
            rows[layer, routed].contiguous()
        if shared is not None:
            tensors[f"model.layers.{layer}.mlp.shared_expert_gate.weight"] = \
                rows[layer, names.index(shared)].unsqueeze(0).contiguous()
    return tensors
