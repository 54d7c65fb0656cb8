"""moe-eval: per-domain perplexity of Hugging Face and ONNX models, routing
statistics of MoE checkpoints, tables, JSON and plots (see README.md)."""
