"""Heat maps of the break-even study: iteration-time change over ratio x codec throughput, one panel
per placement, with the closed-form boundary drawn over them."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402


def plot_heat_maps(maps: dict[str, dict], link_GBps: float, td_over_tc: float, title: str, out: Path) -> None:
    fig, axes = plt.subplots(1, len(maps), figsize=(4.6 * len(maps), 4), squeeze=False, sharey=True)
    # The colour range is the largest gain, so the region where compression pays is readable;
    # larger slowdowns saturate.
    lim = max(1.0, -min(np.array(m["change_pct"]).min() for m in maps.values()))
    for ax, (placement, m) in zip(axes[0], maps.items()):
        z = np.array(m["change_pct"])
        x, y = np.array(m["compress_GBps"]), np.array(m["ratios"])
        im = ax.pcolormesh(x, y, z, shading="nearest", cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim))
        ax.set_xscale("log")
        t = np.geomspace(x.min(), x.max(), 200)
        if placement == "in-nic":
            ax.axvline(link_GBps, color="k", lw=1.2, ls="--", label="engine = link rate")
        else:
            ax.plot(t, 1 - link_GBps / t - link_GBps / (td_over_tc * t), "k--", lw=1.2, label="r = 1 - B/Tc - B/Td")
        ax.set(ylim=(y.min(), y.max()), xlabel="compress throughput (GB/s)", title=placement)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("compression ratio (compressed / original)")
    fig.colorbar(im, ax=axes[0].tolist(), label="iteration time change (%)", extend="max")
    fig.suptitle(title, fontsize=10)
    fig.savefig(out, dpi=130, bbox_inches="tight")
    plt.close(fig)
