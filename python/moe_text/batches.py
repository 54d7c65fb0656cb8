"""Training batches drawn from several domains by given proportions.

Each domain's files are joined into one token stream (with the
tokenizer's EOS id between files, when it has one). Batch `step` is a pure
function of (seed, step): each row picks its domain with the proportions
and a uniformly random start in that domain's stream, so a resumed run
sees exactly the batches an uninterrupted one would.
"""

import numpy as np

from .corpus import TextError


class MixedBatches:
    def __init__(self, domain_tokens, proportions, seq_len, batch_size, seed,
                 separator=None):
        """domain_tokens: {name: [token ids per file]} in domain order;
        proportions: probabilities in the same order."""
        self.names = list(domain_tokens)
        self.proportions = np.asarray(proportions, dtype=np.float64)
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.seed = seed
        self.streams = []
        for name, files in domain_tokens.items():
            parts = []
            for ids in files:
                if parts and separator is not None:
                    parts.append(np.array([separator], dtype=np.int64))
                parts.append(ids)
            stream = np.concatenate(parts)
            if len(stream) < seq_len:
                raise TextError(f"domain {name}: {len(stream)} tokens, fewer "
                                f"than one sequence of {seq_len}")
            self.streams.append(stream)

    def tokens(self, name):
        return len(self.streams[self.names.index(name)])

    def batch(self, step):
        """([batch_size, seq_len] int64 token ids, domain index per row)."""
        rng = np.random.default_rng([self.seed, step])
        domains = rng.choice(len(self.names), size=self.batch_size,
                             p=self.proportions)
        rows = []
        for domain in domains:
            stream = self.streams[domain]
            start = int(rng.integers(0, len(stream) - self.seq_len + 1))
            rows.append(stream[start:start + self.seq_len])
        return np.stack(rows), domains
