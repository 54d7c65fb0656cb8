"""moe-train-router: trains the routers of an exported MoE mix on domain
text and writes them back for `router=given` (see README.md)."""
