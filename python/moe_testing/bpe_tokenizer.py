"""Gives a fixture a byte-level BPE tokenizer that llama.cpp implements.

    python -m moe_testing.bpe_tokenizer MODEL_DIR [--tokens N]

The fixtures' own tokenizer is word-level (moe_fixtures.tokenizer), which
llama.cpp has no counterpart for, so the GGUF export refuses to convert it.
This replaces tokenizer.json and tokenizer_config.json of MODEL_DIR with a
GPT-2 style byte-level BPE (ByteLevel pre-tokenizer with its regex, `<s>`
prepended) trained on a few sentences and the fixture words to exactly the
model's vocab_size tokens: `<unk>` = 0, `<s>` = 1, `</s>` = 2 as before.

The corpus gives a few hundred tokens at most. For a larger vocab_size (the
synthetic models of moe_testing.synthetic_model), `--tokens N` trains N
tokens instead and leaves ids N to vocab_size - 1 unnamed: the GGUF export
pads them with unused `[PAD<id>]` tokens, as llama.cpp's converter does.
"""

import argparse
import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIALS = ["<unk>", "<s>", "</s>"]
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b\n",
    "Solve for x: 3x + 5 = 20, so x = 5.",
    "Mixtures of experts route each token to a few feed-forward networks.",
    "import numpy as np\nprint(np.zeros((2, 3)).shape)\n",
    " ".join(f"w{i}" for i in range(3, 128)),
] * 4


def build(vocab_size):
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
        add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False)
    tokenizer.train_from_iterator(CORPUS, trainer)
    if tokenizer.get_vocab_size() != vocab_size:
        raise SystemExit(f"trained {tokenizer.get_vocab_size()} tokens, not "
                         f"{vocab_size}: give the corpus more text (or train fewer, --tokens)")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B:1", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>",
        eos_token="</s>")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--tokens", type=int, metavar="N",
                        help="train N tokens, at most vocab_size "
                        "(default: vocab_size); the ids above stay unnamed")
    args = parser.parse_args()
    config = json.loads((args.model_dir / "config.json").read_text())
    vocab_size = config["vocab_size"]
    tokens = vocab_size if args.tokens is None else args.tokens
    if not len(SPECIALS) < tokens <= vocab_size:
        parser.error(f"--tokens {tokens}: not between {len(SPECIALS) + 1} and "
                     f"vocab_size {vocab_size}")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (args.model_dir / name).unlink(missing_ok=True)
    build(tokens).save_pretrained(args.model_dir)


if __name__ == "__main__":
    main()
