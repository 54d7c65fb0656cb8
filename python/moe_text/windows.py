"""The fixed windows that perplexity is computed on.

Windows of one token sequence start every `stride` tokens (0, stride,
2 stride, ...) and hold up to `context` tokens. Each window scores the
tokens it holds that no earlier window scored, except its own first token,
which has nothing before it in the window. So every token but the first is
scored exactly once when stride < context, each with at least
context - stride tokens of context (all tokens before it in the first
window); with stride == context the windows do not overlap and the first
token of each is not scored. `limit` stops after that many scored tokens.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Window:
    begin: int   # first token fed to the model
    end: int     # one past the last token fed
    first: int   # first scored token (predicted from tokens begin..first-1)

    @property
    def scored(self):
        return self.end - self.first


def scoring_windows(length, context, stride, limit=None):
    if context < 2:
        raise ValueError("the context must hold at least 2 tokens")
    if not 1 <= stride <= context:
        raise ValueError("the stride must be between 1 and the context")
    windows = []
    scored_until = 1
    remaining = float("inf") if limit is None else limit
    begin = 0
    while scored_until < length and begin + 1 < length and remaining > 0:
        end = min(begin + context, length)
        first = max(scored_until, begin + 1)
        end = int(min(end, first + remaining))
        if end > first:
            windows.append(Window(begin, end, first))
            remaining -= end - first
            scored_until = end
        begin += stride
    return windows
