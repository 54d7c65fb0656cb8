"""Tiny Hugging Face models and PEFT adapters for the moe lit tests.

Every fixture is made locally, with fixed seeds, by the real transformers and
peft libraries, cached once per build tree (see :mod:`moe_fixtures.cache`) and
materialised into test directories by ``python -m moe_fixtures make NAME
DEST``. See README.md in this directory and ``python -m moe_fixtures --help``.

This package imports nothing heavy at import time: torch, transformers and
peft are loaded only when a fixture must be built or logits computed.
"""
