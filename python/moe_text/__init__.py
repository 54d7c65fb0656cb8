"""Domain text for router training and evaluation: checked text files,
their token ids, training batches mixed by domain proportions and the
fixed windows that perplexity is computed on (see README.md)."""

from .corpus import (Domain, TextError, load_domains, parse_domain_specs,
                     parse_proportions, read_text, tokenize_domains)
from .batches import MixedBatches
from .windows import Window, scoring_windows

__all__ = ["Domain", "MixedBatches", "TextError", "Window", "load_domains",
           "parse_domain_specs", "parse_proportions", "read_text",
           "scoring_windows", "tokenize_domains"]
