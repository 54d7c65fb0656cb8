"""PNG plots of moe-eval results (matplotlib, no display needed)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402


def perplexity_bars(report, path):
    """Per-domain perplexity of every model side by side, plus the mean over
    domains."""
    domains = report["domains"] + ["mean"]
    models = report["models"]
    width = 0.8 / len(models)
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(domains) * max(1, len(models) / 4)), 4.2))
    positions = np.arange(len(domains))
    for index, model in enumerate(models):
        values = [model["perplexity"][d] for d in report["domains"]] + \
                 [model["mean_perplexity"]]
        bars = axes.bar(positions + (index - (len(models) - 1) / 2) * width,
                        values, width, label=model["name"])
        axes.bar_label(bars, fmt="%.2f", fontsize=6, rotation=90, padding=2)
    axes.set_xticks(positions, domains)
    axes.set_ylabel("perplexity (lower is better)")
    axes.set_title("Held-out perplexity per domain")
    axes.set_ylim(0, axes.get_ylim()[1] * 1.12)
    axes.legend(fontsize=7, ncols=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def routing_heatmaps(report, path, expert_names=None):
    """For every MoE model (rows) and domain (columns), the share of routing
    choices that went to each expert (x) in each routed layer (y)."""
    models = [m for m in report["models"] if m.get("routing")]
    domains = report["domains"]
    figure, axes = plt.subplots(
        len(models), len(domains), squeeze=False,
        figsize=(1.0 + 2.2 * len(domains), 0.6 + 0.12 * max(
            len(m["routing"][domains[0]]) for m in models) * len(models) + 0.6 * len(models)))
    image = None
    for row, model in enumerate(models):
        for column, domain in enumerate(domains):
            layers = model["routing"][domain]
            shares = np.array([entry["expert_share"] for entry in layers])
            ax = axes[row][column]
            image = ax.imshow(shares, aspect="auto", cmap="viridis", vmin=0,
                              vmax=1, interpolation="nearest")
            experts = shares.shape[1]
            names = (expert_names if expert_names and len(expert_names) == experts
                     else [str(e) for e in range(experts)])
            ax.set_xticks(range(experts), names, fontsize=7,
                          rotation=45 if max(map(len, names)) > 3 else 0)
            ticks = list(range(0, len(layers), max(1, len(layers) // 6)))
            ax.set_yticks(ticks, [str(layers[t]["layer"]) for t in ticks],
                          fontsize=7)
            if column == 0:
                ax.set_ylabel(f"{model['name']}\nlayer", fontsize=8)
            if row == 0:
                ax.set_title(domain, fontsize=9)
    figure.colorbar(image, ax=axes, shrink=0.8,
                    label="share of routing choices")
    figure.suptitle("Expert usage by domain and layer", fontsize=10)
    figure.savefig(path, dpi=110)
    plt.close(figure)
