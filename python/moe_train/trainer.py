"""The router-training loop: which parameters train, the loss, expert load,
checkpoints that resume exactly."""

import dataclasses
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch

from .common import TrainError
from .routers import add_router_bias


@dataclasses.dataclass
class Settings:
    steps: int
    batch_size: int
    seq_len: int
    lr: float
    warmup_steps: int
    weight_decay: float
    max_grad_norm: float
    aux_loss_coef: float
    seed: int
    parts: tuple
    init: str
    base_init_margin: float
    autocast_bf16: bool
    log_every: int
    save_every: int


def select_trainable(model, layout, parts, init, margin):
    """Freezes the model, then unfreezes what `parts` names. Returns
    (trained router sites, sites left as they are because all their experts
    are identical, {parameter name: parameter} of everything trained)."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    trained, dense = [], []
    for site in layout.sites:
        (dense if site.experts_identical() else trained).append(site)
    if not trained:
        raise TrainError("every routed layer has identical experts: there is "
                         "no router whose choice changes the model")
    if init == "base-init":
        penalty = np.full(layout.experts, -margin)
        penalty[0] = 0.0
        for site in trained:
            with torch.no_grad():
                site.router.weight.zero_()
            add_router_bias(layout, site, penalty)
    for site in trained:
        site.router.weight.requires_grad_(True)
        if init == "base-init":
            site.router.bias.requires_grad_(True)
        if "shared-expert-gate" in parts:
            site.shared_gate.weight.requires_grad_(True)
        if "experts" in parts:
            for parameter in site.experts.parameters():
                parameter.requires_grad_(True)
    if "attention" in parts:
        for decoder_layer in model.model.layers:
            for parameter in decoder_layer.self_attn.parameters():
                parameter.requires_grad_(True)
    named = {name: p for name, p in model.named_parameters() if p.requires_grad}
    return trained, dense, named


class RouterTaps:
    """Forward hooks keeping each trained router's logits (with their
    gradient) and top-k indices from the last forward."""

    def __init__(self, sites):
        self.logits, self.indices = {}, {}
        self.handles = [s.router.register_forward_hook(self._hook(s.layer))
                        for s in sites]

    def _hook(self, layer):
        def hook(module, inputs, output):
            self.logits[layer], self.indices[layer] = output[0], output[2]
        return hook

    def close(self):
        for handle in self.handles:
            handle.remove()


def fingerprint(mix_dir, domains, settings):
    """What a resumed run must share with the run that saved the checkpoint."""
    files = {}
    for domain in domains:
        for path, text in zip(domain.files, domain.texts):
            files[f"{domain.name}:{os.path.abspath(path)}"] = hashlib.sha256(
                text.encode()).hexdigest()
    return {
        "mix": os.path.realpath(mix_dir),
        "data": files,
        **{key: getattr(settings, key) for key in (
            "batch_size", "seq_len", "seed", "parts", "init",
            "base_init_margin", "aux_loss_coef")},
    }


class Checkpoints:
    """One state file in a directory, replaced atomically at each save."""

    def __init__(self, directory):
        self.directory = directory
        self.path = os.path.join(directory, "router-training.pt") if directory else None

    def load(self, expected):
        if not self.path or not os.path.exists(self.path):
            return None
        try:
            state = torch.load(self.path, weights_only=False)
        except Exception as error:
            raise TrainError(f"{self.path}: not a checkpoint of moe-train-router: "
                             f"{str(error).splitlines()[0]}") from None
        saved = state.get("fingerprint", {})
        for key, value in expected.items():
            if json.dumps(saved.get(key), sort_keys=True) != json.dumps(value, sort_keys=True):
                raise TrainError(f"{self.path}: saved by a run with another "
                                 f"{key} ({saved.get(key)!r}, now {value!r}); "
                                 "use another --checkpoint-dir or drop --resume")
        return state

    def save(self, state):
        os.makedirs(self.directory, exist_ok=True)
        temporary = self.path + ".tmp"
        torch.save(state, temporary)
        os.replace(temporary, self.path)


def train(model, layout, batches, settings, device, checkpoints, resume_state,
          fingerprint_value, progress_out=sys.stderr):
    """Runs the loop; returns the run record (losses, expert load, timing)."""
    from tqdm import tqdm

    trained, dense, named = select_trainable(
        model, layout, settings.parts, settings.init, settings.base_init_margin)
    model.to(device)
    model.train()
    optimizer = torch.optim.AdamW(list(named.values()), lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    domains = len(batches.names)
    load = np.zeros((settings.steps, domains, len(trained), layout.experts),
                    dtype=np.int64)
    losses = []
    start = 0
    if resume_state is not None:
        with torch.no_grad():
            for name, value in resume_state["parameters"].items():
                if name not in named:
                    raise TrainError(f"{checkpoints.path}: holds {name}, which "
                                     "this run does not train")
                named[name].copy_(value)
        optimizer.load_state_dict(resume_state["optimizer"])
        start = resume_state["step"]
        losses = resume_state["losses"]
        saved = resume_state["load"]
        if start > settings.steps:
            raise TrainError(f"{checkpoints.path}: already {start} steps, more "
                             f"than --steps {settings.steps}")
        load[:start] = saved[:start]

    from importlib import import_module
    balance_loss = import_module(type(model).__module__).load_balancing_loss_func
    taps = RouterTaps(trained)
    tokens_per_step = settings.batch_size * settings.seq_len
    interactive = progress_out.isatty()
    bar = tqdm(total=settings.steps, initial=start, unit="step",
               disable=not interactive, file=progress_out, desc="router training")
    started = time.perf_counter()
    window_start, window_steps = time.perf_counter(), 0
    try:
        for step in range(start, settings.steps):
            ids, row_domains = batches.batch(step)
            inputs = torch.from_numpy(ids).to(device)
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * min(1.0, (step + 1) / max(1, settings.warmup_steps))
            with torch.autocast(device_type=device.split(":")[0],
                                dtype=torch.bfloat16, enabled=settings.autocast_bf16):
                output = model(input_ids=inputs, labels=inputs, use_cache=False)
                lm_loss = output.loss.float()
                aux_loss = balance_loss(
                    tuple(taps.logits[s.layer].float() for s in trained),
                    layout.experts, layout.top_k)
            loss = lm_loss + settings.aux_loss_coef * aux_loss
            if not torch.isfinite(loss):
                raise TrainError(f"step {step + 1}: the loss is {loss.item()} "
                                 "(lower --lr?)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(list(named.values()),
                                               settings.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                rows = torch.from_numpy(np.repeat(row_domains, settings.seq_len))
                for column, site in enumerate(trained):
                    chosen = taps.indices[site.layer].reshape(len(rows), -1).cpu()
                    for domain in range(domains):
                        picked = chosen[rows == domain].reshape(-1)
                        load[step, domain, column] = torch.bincount(
                            picked, minlength=layout.experts).numpy()
            loss, lm_loss, aux_loss = loss.detach(), lm_loss.detach(), aux_loss.detach()
            losses.append({"step": step + 1, "loss": float(loss),
                           "lm_loss": float(lm_loss), "aux_loss": float(aux_loss)})
            window_steps += 1
            elapsed = time.perf_counter() - window_start
            rate = window_steps * tokens_per_step / max(elapsed, 1e-9)
            bar.set_postfix(loss=f"{float(loss):.4f}", aux=f"{float(aux_loss):.3f}",
                            tok_s=f"{rate:.0f}")
            bar.update(1)
            done = step + 1
            if not interactive and (done % settings.log_every == 0 or done == settings.steps):
                print(f"step {done}/{settings.steps}  loss {float(loss):.4f} "
                      f"(lm {float(lm_loss):.4f}, balance {float(aux_loss):.4f})  "
                      f"{rate:.0f} tokens/s", file=progress_out, flush=True)
                window_start, window_steps = time.perf_counter(), 0
            if checkpoints.directory and (done % settings.save_every == 0
                                          or done == settings.steps):
                checkpoints.save({
                    "fingerprint": fingerprint_value, "step": done,
                    "parameters": {n: p.detach().cpu() for n, p in named.items()},
                    "optimizer": optimizer.state_dict(),
                    "losses": losses, "load": load[:done]})
    finally:
        bar.close()
        taps.close()
    model.eval()
    seconds = time.perf_counter() - started
    return {
        "trained": trained, "dense": dense, "parameters": named,
        "losses": losses, "load": load, "first_step": start,
        "seconds": seconds,
        "tokens_per_second": (settings.steps - start) * tokens_per_step / max(seconds, 1e-9),
    }
