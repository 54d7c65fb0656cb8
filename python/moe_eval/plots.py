"""PNG plots of moe-eval results (matplotlib, no display needed)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402


def perplexity_bars(report, path):
    """Per-domain perplexity of every model side by side (top), and the same
    relative to the first model (bottom), plus the mean over domains."""
    domains = report["domains"] + ["mean"]
    models = report["models"]
    values = np.array([[m["perplexity"][d] for d in report["domains"]] + [m["mean_perplexity"]]
                       for m in models])
    colours = plt.get_cmap("tab10" if len(models) <= 10 else "tab20").colors
    width = 0.8 / len(models)
    figure, (top, bottom) = plt.subplots(
        2, 1, sharex=True, constrained_layout=True,
        figsize=(max(7.0, 1.1 * len(domains) + 0.35 * len(domains) * len(models)), 6.5))
    positions = np.arange(len(domains))
    relative = 100 * (values / values[0] - 1)
    for index, model in enumerate(models):
        offset = positions + (index - (len(models) - 1) / 2) * width
        colour = colours[index % len(colours)]
        bars = top.bar(offset, values[index], width, label=model["name"], color=colour)
        top.bar_label(bars, fmt="%.2f", fontsize=6, rotation=90, padding=2)
        bottom.bar(offset, relative[index], width, color=colour)
    top.set_ylabel("perplexity (lower is better)")
    top.set_ylim(0, values.max() * 1.15)
    top.set_title("Held-out perplexity per domain")
    bottom.axhline(0, color="black", linewidth=0.8)
    bottom.set_ylabel(f"% vs {models[0]['name']}")
    bottom.set_xticks(positions, domains)
    figure.legend(loc="outside right center", fontsize=7)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def routing_heatmaps(report, path, expert_names=None):
    """For every MoE model (rows) and domain (columns), the share of routing
    choices that went to each expert (x) in each routed layer (y)."""
    models = [m for m in report["models"] if m.get("routing")]
    domains = report["domains"]
    layers = max(len(m["routing"][domains[0]]) for m in models)
    figure, axes = plt.subplots(
        len(models), len(domains), squeeze=False, constrained_layout=True,
        figsize=(1.4 + 2.0 * len(domains), 0.5 + len(models) * (0.8 + 0.08 * layers)))
    image = None
    for row, model in enumerate(models):
        for column, domain in enumerate(domains):
            entries = model["routing"][domain]
            shares = np.array([entry["expert_share"] for entry in entries])
            ax = axes[row][column]
            image = ax.imshow(shares, aspect="auto", cmap="viridis", vmin=0,
                              vmax=1, interpolation="nearest")
            experts = shares.shape[1]
            names = (expert_names if expert_names and len(expert_names) == experts
                     else [str(e) for e in range(experts)])
            ax.set_xticks(range(experts), names, fontsize=7,
                          rotation=45 if max(map(len, names)) > 3 else 0)
            ticks = list(range(0, len(entries), max(1, len(entries) // 6)))
            ax.set_yticks(ticks, [str(entries[t]["layer"]) for t in ticks], fontsize=7)
            if column == 0:
                ax.set_ylabel(f"{model['name']}\nlayer", fontsize=8)
            if row == 0:
                ax.set_title(domain, fontsize=9)
    figure.colorbar(image, ax=axes, shrink=0.8, label="share of routing choices")
    figure.suptitle("Expert usage by domain and layer", fontsize=10)
    figure.savefig(path, dpi=110)
    plt.close(figure)
