"""moe_mix: the YAML front end of the moe tools (see README.md)."""
