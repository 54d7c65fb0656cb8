"""Command line of the reference (see README.md):

    logits --base DIR [--expert NAME=DIR ...] [mix options] --ids IDS --out F.npy
    router-weights --base DIR [--expert NAME=DIR ...] [mix options] --out F.safetensors
    adapters-logits --base DIR --adapter NAME=DIR ... [options] --ids IDS --out F.npy
    adapters-router-weights --base DIR --adapter NAME=DIR ... [options] --out F.safetensors
    self-check --fixtures DIR
"""

import argparse
import os
import sys

import numpy as np


def _named(text):
    """NAME=DIR, or DIR named after its last path component."""
    name, sep, path = text.partition("=")
    if not sep:
        name, path = os.path.basename(os.path.normpath(text)), text
    if not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name, path


def _names(text):
    return [name.strip() for name in text.split(",") if name.strip()]


def _layers(text):
    return [int(layer) for layer in _names(text)]


def _bool(text):
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _experts_options(parser):
    from .routers import EXPERT_ROUTER_MODES, SCORINGS
    parser.add_argument("--base", required=True, help="directory of the base model")
    parser.add_argument("--base-name", default="base", help="name of the base (default: base)")
    parser.add_argument("--expert", action="append", type=_named, default=[],
                        metavar="NAME=DIR", help="another model, in order")
    parser.add_argument("--experts", type=_names,
                        help="comma-separated names of the expert models, in order "
                             "(default: the base, then every --expert)")
    parser.add_argument("--layers", type=_layers, help="decoder layers to mix (default: all)")
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--router", choices=EXPERT_ROUTER_MODES, default="noisy")
    parser.add_argument("--scoring", choices=SCORINGS, default="softmax")
    parser.add_argument("--renormalize", type=_bool, default=True, metavar="true|false")
    parser.add_argument("--no-renormalize", dest="renormalize", action="store_false")
    parser.add_argument("--router-std", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prototypes", help="safetensors file with 'prototypes' (router=hidden)")
    parser.add_argument("--cheap-embed-tokens", help="token ids per expert, e.g. '5,17;8;9,2'")
    parser.add_argument("--router-weights", help="safetensors file of router=given")
    parser.add_argument("--always-on", help="model whose FFN is always on with weight 1")
    parser.add_argument("--shared-expert", help="model whose FFN is a sigmoid-gated shared expert")
    parser.add_argument("--stem", choices=("base", "average"), default="base")
    parser.add_argument("--fine-grained", action="store_true")
    parser.add_argument("--route-attention", action="store_true")
    parser.add_argument("--global-router", action="store_true")


def _adapters_options(parser):
    from .routers import ADAPTER_ROUTER_MODES, SCORINGS
    parser.add_argument("--base", required=True, help="directory of the base model")
    parser.add_argument("--adapter", action="append", type=_named, required=True,
                        metavar="NAME=DIR", help="a PEFT LoRA adapter, in order")
    parser.add_argument("--router", choices=ADAPTER_ROUTER_MODES, default="noisy")
    parser.add_argument("--normalization", choices=SCORINGS, default="sigmoid")
    parser.add_argument("--top-k", type=int, default=0, help="adapters per token (0: all)")
    parser.add_argument("--router-std", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--router-weights", help="safetensors file of router=given")


def _experts_mix(args):
    from .experts import ExpertsMix
    models = dict(args.expert)
    if len(models) != len(args.expert):
        raise SystemExit("error: an --expert name is given twice")
    return ExpertsMix(
        base=args.base, models=models, base_name=args.base_name, experts=args.experts,
        layers=args.layers, k=args.k, router=args.router, scoring=args.scoring,
        renormalize=args.renormalize, router_std=args.router_std, seed=args.seed,
        prototypes=args.prototypes, cheap_embed_tokens=args.cheap_embed_tokens,
        router_weights=args.router_weights, always_on=args.always_on,
        shared_expert=args.shared_expert, stem=args.stem, fine_grained=args.fine_grained,
        route_attention=args.route_attention, global_router=args.global_router)


def _adapters_mix(args):
    from .adapters import AdaptersMix
    return AdaptersMix(base=args.base, adapters=args.adapter, router=args.router,
                       normalization=args.normalization, top_k=args.top_k,
                       router_std=args.router_std, seed=args.seed,
                       router_weights=args.router_weights)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m moe_reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, options, help_text in [
            ("logits", _experts_options, "logits of a moe-mix-experts mix"),
            ("router-weights", _experts_options, "router tensors of a moe-mix-experts mix"),
            ("adapters-logits", _adapters_options, "logits of a moe-mix-adapters mix"),
            ("adapters-router-weights", _adapters_options,
             "router tensors of a moe-mix-adapters mix")]:
        sub = commands.add_parser(name, help=help_text)
        options(sub)
        if name.endswith("logits"):
            sub.add_argument("--ids", required=True, help='token ids, e.g. "1,2,3;4,5,6"')
        sub.add_argument("--out", required=True, help="output .npy / .safetensors file")
    check = commands.add_parser("self-check", help="identity checks of the reference")
    check.add_argument("--fixtures", required=True,
                       help="directory holding the moe_fixtures the checks use")
    args = parser.parse_args(argv)

    from .models import parse_ids, write_safetensors
    try:
        if args.command == "self-check":
            from .selfcheck import run
            return 1 if run(args.fixtures) else 0
        if args.command == "logits":
            from .experts import experts_logits
            np.save(args.out, experts_logits(_experts_mix(args), parse_ids(args.ids)))
        elif args.command == "router-weights":
            from .experts import experts_router_weights
            write_safetensors(experts_router_weights(_experts_mix(args)), args.out)
        elif args.command == "adapters-logits":
            from .adapters import adapters_logits
            np.save(args.out, adapters_logits(_adapters_mix(args), parse_ids(args.ids)))
        else:
            from .adapters import adapters_router_weights
            write_safetensors(adapters_router_weights(_adapters_mix(args)), args.out)
    except (ValueError, KeyError, NotImplementedError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
