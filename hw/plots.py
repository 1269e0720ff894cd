"""PNG plots of a characterisation run (matplotlib, Agg backend): the edge of `hw.characterization`.

tuning.png (f0 vs control with the line fit), k_per_code.png (K_eff vs code, both signs,
against a straight line through the full code), locking.png (ψ vs cycles for the three
regimes, and dψ/dt vs ψ of the full-code drift with its Adler fit), jitter.png (histogram
of the periods under transient noise), coupling_function.png (H(x) per code at one coupler
per cell against K_eff sin x, and each term's load factor against the fan-out m).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _save(fig: Any, path: Path) -> None:
    from oscsim import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def write_plots(out: Path, *, raw: dict, kfits: dict, jitter: Any, locks: tuple, tuning: Any) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    written = []
    # tuning curve
    fig, ax = plt.subplots(figsize=(5, 3.5))
    v = np.array(tuning.vctrl_v)
    f = np.array(tuning.f0_hz)
    ax.plot(v, f / 1e6, "o-", label="ngspice")
    ax.plot(v, (tuning.k_vco_hz_per_v * v + tuning.intercept_hz) / 1e6, "--", label="line fit")
    ax.set_xlabel("V_ctrl (V)")
    ax.set_ylabel("f0 (MHz)")
    ax.set_title(f"tuning: worst deviation {tuning.linearity_error:.1%} of the range")
    ax.legend()
    written.append(out / "tuning.png")
    _save(fig, written[-1])
    plt.close(fig)

    # K per code
    fig, ax = plt.subplots(figsize=(5, 3.5))
    pos = sorted(c for c in kfits if c >= 0)
    neg = sorted(-c for c in kfits if c < 0)
    ax.plot(pos, [max(kfits[c].fit.k_rad_s, 0) / 1e6 for c in pos], "o-", label="+code (like nodes)")
    if neg:
        ax.plot(neg, [-kfits[-c].fit.k_rad_s / 1e6 for c in neg], "s--", label="-code (complementary), |K|")
    kmax = max(pos)
    ax.plot([0, kmax], [0, kfits[kmax].fit.k_rad_s / 1e6], ":", color="gray", label="linear in code")
    ax.set_xlabel("|code|")
    ax.set_ylabel("K_eff (Mrad/s)")
    ax.set_title("coupling per DAC code (Adler fit)")
    ax.legend()
    written.append(out / "k_per_code.png")
    _save(fig, written[-1])
    plt.close(fig)

    # locking regimes + coupling function
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for m, label in zip(locks, ("+full code: in phase", "-full code: anti-phase", "+full code, detuned: drift")):
        ax1.plot(np.mod(np.degrees(m.psi_rad) + 90, 360) - 90, ".-", label=label)  # 0 and 180 both inside
    ax1.set_xlabel("cycle of A")
    ax1.set_ylabel("psi = theta_B - theta_A (deg)")
    ax1.set_ylim(-95, 275)
    ax1.legend(fontsize=8)
    ax1.set_title("two coupled cells")
    m = kfits[kmax]
    ax2.plot(np.degrees(m.psi_rad), m.dpsi_rad_s / 1e6, ".", ms=3, label="ngspice (drifting pair)")
    grid = np.linspace(-np.pi, np.pi, 200)
    fit = m.fit
    model = fit.delta_omega_rad_s + sum(a * np.sin((k + 1) * grid) + b * np.cos((k + 1) * grid)
                                        for k, (a, b) in enumerate(zip(fit.a, fit.b)))
    ax2.plot(np.degrees(grid), model / 1e6, "-", label="fit")
    ax2.plot(np.degrees(grid), (fit.delta_omega_rad_s - 2 * fit.k_rad_s * np.sin(grid)) / 1e6, "--",
             label="Adler, pure sine")
    ax2.set_xlabel("psi (deg)")
    ax2.set_ylabel("dpsi/dt (Mrad/s)")
    ax2.set_title(f"code +{kmax}: K = {fit.k_rad_s:.3g} rad/s, residual {fit.residual_rel:.1%}")
    ax2.legend(fontsize=8)
    written.append(out / "locking.png")
    _save(fig, written[-1])
    plt.close(fig)

    # coupling function
    hf = raw.get("coupling_function")
    if hf is not None:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        x = np.linspace(-np.pi, np.pi, 361)
        basis = np.stack([np.ones_like(x)] + [f(k * x) for k in (1, 2, 3) for f in (np.sin, np.cos)], axis=-1)
        rows = np.asarray(hf["rows_rad_s"])
        codes = hf["codes"]
        for code, row in zip(codes, rows):
            if abs(code) % 2 == 1 or abs(code) == max(abs(c) for c in codes):
                color = f"C{abs(code) // 2}"
                ls = "-" if code > 0 else "--"
                ax1.plot(np.degrees(x), basis @ row / 1e6, ls, color=color, lw=1.3, label=f"code {code:+d}")
                ax1.plot(np.degrees(x), row[1] * np.sin(x) / 1e6, ":", color=color, lw=0.8)
        ax1.set_xlabel("x = theta_j - theta_i (deg)")
        ax1.set_ylabel("H(x) (Mrad/s)")
        ax1.set_title("coupling function per code (dotted: K_eff sin x)")
        ax1.legend(fontsize=7, ncol=2)
        ms = np.arange(1, len(hf["fanout_receiver"][0]) + 1)
        for s_idx, sign in enumerate("+-"):
            for table, mark in ((hf["fanout_receiver"], "o"), (hf["fanout_sender"], "s")):
                t = np.asarray(table[s_idx])
                who = "receiver" if table is hf["fanout_receiver"] else "sender"
                for term, color in ((0, "C0"), (1, "C1"), (2, "C2")):
                    ax2.plot(ms, t[:, term], mark + ("-" if sign == "+" else "--"), color=color, ms=4,
                             label=f"{hf['terms'][term]}, {who} load, {sign}code" if term == 1 or s_idx == 0 else None)
        ax2.set_xlabel("couplers on the cell (m)")
        ax2.set_ylabel("factor against m = 1")
        ax2.set_title(f"load factors at code ±{hf['fanout_ref_code']}")
        ax2.legend(fontsize=6, ncol=2)
        written.append(out / "coupling_function.png")
        _save(fig, written[-1])
        plt.close(fig)

    # jitter
    fig, ax = plt.subplots(figsize=(5, 3.5))
    p = jitter.periods_s
    ax.hist((p - p.mean()) * 1e12, bins=30)
    ax.set_xlabel("period - mean (ps)")
    ax.set_ylabel("count")
    ax.set_title(f"period jitter {jitter.net_s * 1e12:.3g} ps rms (floor {jitter.floor_s * 1e12:.2g} ps)")
    written.append(out / "jitter.png")
    _save(fig, written[-1])
    plt.close(fig)
    return written
