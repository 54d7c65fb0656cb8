"""A tiny word-level tokenizer saved next to the model fixtures.

Vocabulary of ``vocab_size`` tokens: ``<unk>`` = 0, ``<s>`` = 1 (bos),
``</s>`` = 2 (eos), then ``w3`` ... ``w{vocab_size-1}`` whose id is the
number in their name. Text is split on whitespace and ``<s>`` is prepended,
so ``"w5 w6"`` encodes to ``[1, 5, 6]``. It is a ``tokenizers`` WordLevel
model wrapped in ``PreTrainedTokenizerFast`` (transformers 5 saves it as
``tokenizer_class: TokenizersBackend``); ``save_pretrained`` writes
tokenizer.json and tokenizer_config.json. See models.WITHOUT_TOKENIZER for
the families that cannot carry it.
"""

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIALS = ("<unk>", "<s>", "</s>")


def build(vocab_size, max_length):
    """Returns the PreTrainedTokenizerFast for a vocabulary of vocab_size
    and sequences of at most max_length tokens."""
    vocab = {token: index for index, token in enumerate(SPECIALS)}
    vocab.update({f"w{index}": index
                  for index in range(len(SPECIALS), vocab_size)})
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B:1", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>",
        eos_token="</s>", model_max_length=max_length)
