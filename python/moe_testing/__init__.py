"""Small tools that lit tests use to make inputs (not fixtures of whole models:
those live in moe_fixtures)."""
