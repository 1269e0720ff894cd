"""The release's dynamics ablation, reproduced on digits with the same loss and budget.

Variants (the release's `ablation_study/run_ablation.sh`, all eight): trained dynamics
with 10, 5, 2 and 1 Euler steps; a reservoir (dynamics frozen at their random
initialisation) with 10 and 1 steps; decoder only (0 steps: the sin/cos readout of the
random seed phases goes straight into the decoder) and decoder only on the raw phases (no
sin/cos: the decoder reads the relativized phases themselves, half as many numbers). Each
is trained from several seeds and scored by FID-digits, precision/recall and class
accuracy; then precision/recall along integration time t ∈ (0, T] for the trained and
reservoir 10-step models. A subset may be run (`variants`). Runs resume (a finished run is
not retrained).
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from analysis.evaluate import score_digits
from analysis.features import digits_encoder, digits_feature_weights
from models import PUBLISHED, Un0, load
from models.data import digits
from models.train import STATE_FILE, Trainer, TrainOptions, read_state
from oscsim import atomic_path


@dataclass(frozen=True)
class Variant:
    """One arm of the ablation: Euler steps, dynamics frozen at init or trained, and the
    readout encoding (None: the size's own, sin/cos for the published sizes)."""

    steps: int
    frozen: bool
    encoding: str | None
    release: str  # the release's name for it

    def describe(self) -> str:
        if self.steps == 0:
            readout = "raw phases" if self.encoding == "raw" else "sin/cos readout"
            return f"decoder only ({readout} of the seed phases)"
        kind = "reservoir (dynamics frozen at init)" if self.frozen else "trained dynamics"
        return f"{kind}, {self.steps} Euler step{'s' if self.steps > 1 else ''}"


#: the release's eight variants, under this project's names
VARIANTS: dict[str, Variant] = {
    "trained-10": Variant(10, False, None, "trained_euler10"),
    "trained-5": Variant(5, False, None, "trained_euler5"),
    "trained-2": Variant(2, False, None, "trained_euler2"),
    "trained-1": Variant(1, False, None, "trained_euler1"),
    "reservoir-10": Variant(10, True, None, "reservoir_euler10"),
    "reservoir-1": Variant(1, True, None, "reservoir_euler1"),
    "decoder-only": Variant(0, False, None, "decoder_only"),
    "decoder-only-raw": Variant(0, False, "raw", "decoder_only_raw"),
}
#: the variants whose precision/recall is followed along integration time (when run)
OVER_TIME = ("trained-10", "reservoir-10")
FIELDS = ("variant", "seed", "fid", "precision", "recall", "class_accuracy", "floor")
#: relative spread of the data floor (train-vs-test FID) that still counts as the same
#: scoring when merging folders: two runs of one setup on one machine gave floors that
#: differ in the 7th digit (4.4610552, 4.4610567); another split or network moves it far more
FLOOR_TOLERANCE = 1e-5


class AblationError(ValueError):
    """A bad ablation request (an unknown variant name, an empty list)."""


def parse_variants(text: str) -> tuple[str, ...]:
    """'trained-10,decoder-only' → the named variants, in the table's order, once each;
    'all' → all eight. An unknown or empty name is one AblationError listing the known ones."""
    if text.strip() == "all":
        return tuple(VARIANTS)
    names = [n.strip() for n in text.split(",")]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        shown = ", ".join(repr(n) for n in unknown)
        raise AblationError(f"unknown variant{'s' if len(unknown) > 1 else ''} {shown}; "
                            f"choose from {', '.join(VARIANTS)} (comma-separated) or 'all'")
    return tuple(v for v in VARIANTS if v in names)


def variant_config(variant: str, size: str):
    """The size's config with the variant's Euler steps (and readout encoding)."""
    v = VARIANTS[variant]
    config = PUBLISHED[size].replace(num_steps=v.steps)
    return config if v.encoding is None else config.replace(encoding=v.encoding)


def train_variant(out: Path, variant: str, seed: int, *, steps: int, size: str, progress: bool) -> Path:
    config = variant_config(variant, size)
    run = out / f"{variant}-s{seed}"
    state = run / STATE_FILE
    if (state.exists() or state.is_symlink()) and read_state(state)["step"] >= steps:
        return run / "ema.safetensors"
    options = TrainOptions(steps=steps, seed=seed, freeze_dynamics=VARIANTS[variant].frozen,
                           feature_weights=digits_feature_weights())
    provenance = {"ablation": variant, "release_variant": VARIANTS[variant].release,
                  "command": f"un0hw ablate (variant {variant}, seed {seed})"}
    trainer = Trainer(Un0.init(config, seed=seed), digits("train"), digits_encoder(), options, run, provenance=provenance)
    return trainer.run(progress=progress)


def _write_csv(path: Path, rows: list[dict], fields) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and spread (sample standard deviation) per variant, best FID first."""
    out = []
    for variant in VARIANTS:
        sub = [r for r in rows if r["variant"] == variant]
        if not sub:
            continue
        entry = {"variant": variant, "runs": len(sub)}
        for key in ("fid", "precision", "recall", "class_accuracy"):
            values = [r[key] for r in sub]
            entry[key] = statistics.fmean(values)
            entry[key + "_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(entry)
    return sorted(out, key=lambda e: e["fid"])


def run_ablation(out: str | Path, *, variants=tuple(VARIANTS), seeds=(0, 1, 2), steps: int = 1000,
                 size: str = "digits-n512", per_class: int = 100, progress: bool = True) -> list[dict]:
    """Train (or find finished) and score every variant × seed, then write the report."""
    out = Path(out)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise AblationError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}" if unknown
                            else "no variants to run")
    variants = tuple(v for v in VARIANTS if v in variants)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in variants:
        for seed in seeds:
            ckpt = train_variant(out, variant, seed, steps=steps, size=size, progress=progress)
            score = score_digits(load(ckpt), per_class=per_class, seed=1000 + seed)
            rows.append({"variant": variant, "seed": seed, "fid": score.fid, "precision": score.precision,
                         "recall": score.recall, "class_accuracy": score.class_accuracy, "floor": score.floor})
    _write_csv(out / "ablation.csv", rows, FIELDS)
    summary = summarise(rows)
    time_rows = precision_recall_over_time(out, [v for v in OVER_TIME if v in variants], seed=seeds[0],
                                           per_class=per_class)
    write_report(out, summary, time_rows, floor=rows[0]["floor"], steps=steps, seeds=seeds)
    return summary


def precision_recall_over_time(out: Path, variants=OVER_TIME, *, seed: int, per_class: int) -> list[dict]:
    """FID/precision/recall of the 10-step trained and reservoir models (those of them in
    `variants`) stopped at t = s·h, s = 1 … 10 (h = T/10: the same Euler steps, fewer of them)."""
    rows = []
    for variant in variants:
        model = load(out / f"{variant}-s{seed}" / "ema.safetensors")
        h = model.config.integration_time / model.config.num_steps
        for s in range(1, model.config.num_steps + 1):
            score = score_digits(model, per_class=per_class, seed=2000 + seed, steps=s, T=s * h)
            rows.append({"variant": variant, "t": s * h, "fid": score.fid, "precision": score.precision,
                         "recall": score.recall})
    _write_csv(out / "pr_over_time.csv", rows, ("variant", "t", "fid", "precision", "recall"))
    return rows


def _read_csv(path: Path, numeric) -> list[dict]:
    from oscsim.fileio import PathCheckError, readable_file

    try:
        readable_file(path)
    except PathCheckError as exc:
        raise AblationError(str(exc)) from None
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    try:
        return [{k: (float(v) if k in numeric else v) for k, v in row.items()} for row in rows]
    except (TypeError, ValueError) as exc:
        raise AblationError(f"{path}: not an ablation table ({exc})") from None


def merge_results(out: str | Path, sources: dict, *, steps: int, seeds) -> list[dict]:
    """One report from the scores of earlier ablation folders, without training or
    scoring anything: for a table whose variants were run at different times with the
    same budget. `sources` maps a label to a folder holding ablation.csv and
    pr_over_time.csv (all its variants) or to (folder, variants to take from it). Each
    variant must come from one folder only and have exactly `seeds`; the folders' data
    floors must agree. The report ends with a line naming which rows came from which folder."""
    out = Path(out)
    rows, time_rows, origin = [], [], {}
    for label, source in sources.items():
        folder, take = (source, None) if isinstance(source, (str, Path)) else source
        folder = Path(folder)
        got = _read_csv(folder / "ablation.csv", {"fid", "precision", "recall", "class_accuracy", "floor"})
        if take is not None:
            missing = sorted(set(take) - {r["variant"] for r in got})
            if missing:
                raise AblationError(f"{folder / 'ablation.csv'} has no rows of {', '.join(missing)}")
            got = [r for r in got if r["variant"] in take]
        for r in got:
            r["seed"] = int(r["seed"])
            if r["variant"] not in VARIANTS:
                raise AblationError(f"{folder / 'ablation.csv'}: unknown variant {r['variant']!r}")
            if origin.setdefault(r["variant"], label) != label:
                raise AblationError(f"variant {r['variant']} is in both {origin[r['variant']]!r} and {label!r}")
        time_rows += [r for r in _read_csv(folder / "pr_over_time.csv", {"t", "fid", "precision", "recall"})
                      if take is None or r["variant"] in take]
        rows += got
    for variant in origin:
        found = sorted(r["seed"] for r in rows if r["variant"] == variant)
        if found != sorted(seeds):
            raise AblationError(f"variant {variant} ({origin[variant]!r}) has seeds {found}, not {sorted(seeds)}")
    floors = [r["floor"] for r in rows]
    if max(floors) - min(floors) > FLOOR_TOLERANCE * max(floors):
        raise AblationError(f"the folders' data floors differ ({min(floors)!r} … {max(floors)!r}): not the same scoring")
    order = list(VARIANTS)
    rows.sort(key=lambda r: (order.index(r["variant"]), r["seed"]))
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "ablation.csv", rows, FIELDS)
    _write_csv(out / "pr_over_time.csv", time_rows, ("variant", "t", "fid", "precision", "recall"))
    summary = summarise(rows)
    write_report(out, summary, time_rows, floor=rows[0]["floor"], steps=steps, seeds=seeds)
    note = "; ".join(f"{', '.join(v for v in order if origin.get(v) == label)} from {label}" for label in sources)
    with atomic_path(out / "ablation.md") as tmp:
        tmp.write_text((out / "ablation.md").read_text() + f"\nMerged: {note}.\n")
    return summary


def findings(summary: list[dict]) -> list[str]:
    """The report's sentences, each written only when its variants are in `summary`: the
    release's ordering, FID against the number of trained Euler steps, and raw against
    sin/cos readout for decoder only."""
    fid = {e["variant"]: e["fid"] for e in summary}
    sd = {e["variant"]: e["fid_sd"] for e in summary}
    lines = []
    if {"trained-10", "reservoir-10", "decoder-only"} <= fid.keys():
        holds = fid["trained-10"] < fid["reservoir-10"] < fid["decoder-only"]
        lines.append(f"Release ordering (trained 10-step < reservoir < decoder only): "
                     f"{'holds' if holds else 'does not hold'} here "
                     f"({fid['trained-10']:.2f} / {fid['reservoir-10']:.2f} / {fid['decoder-only']:.2f}).")
    trained = sorted((VARIANTS[v].steps, v) for v in fid if v.startswith("trained-"))
    if len(trained) >= 2:
        values = [fid[v] for _, v in trained]
        falls = all(a > b for a, b in zip(values, values[1:]))
        path = " → ".join(f"{n}: {fid[v]:.2f} ± {sd[v]:.2f}" for n, v in trained)
        lines.append(f"Trained dynamics by Euler steps ({path}): FID "
                     f"{'falls with every added step' if falls else 'does not fall with every added step'}.")
    if {"decoder-only", "decoder-only-raw"} <= fid.keys():
        a, b = fid["decoder-only"], fid["decoder-only-raw"]
        apart = abs(a - b) > sd["decoder-only"] + sd["decoder-only-raw"]
        lines.append(f"Decoder only, sin/cos vs raw readout: {a:.2f} ± {sd['decoder-only']:.2f} vs "
                     f"{b:.2f} ± {sd['decoder-only-raw']:.2f} "
                     f"({'further apart than' if apart else 'within'} the two spreads added).")
    return lines


def write_report(out: Path, summary: list[dict], time_rows: list[dict], *, floor: float, steps: int, seeds) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), dpi=120)
    names = [e["variant"] for e in summary]
    axes[0].bar(names, [e["fid"] for e in summary], yerr=[e["fid_sd"] for e in summary], capsize=4, color="#4c72b0")
    axes[0].axhline(floor, color="k", ls="--", lw=1, label=f"data floor {floor:.2f}")
    axes[0].set_ylabel("FID-digits (lower is better)")
    axes[0].tick_params(axis="x", rotation=35, labelsize=8)
    axes[0].legend()
    for variant, colour in (("trained-10", "#4c72b0"), ("reservoir-10", "#dd8452")):
        sub = [r for r in time_rows if r["variant"] == variant]
        if not sub:
            continue
        axes[1].plot([r["t"] for r in sub], [r["precision"] for r in sub], "-o", color=colour, ms=3, label=f"{variant} precision")
        axes[1].plot([r["t"] for r in sub], [r["recall"] for r in sub], "--s", color=colour, ms=3, label=f"{variant} recall")
    if time_rows:
        axes[1].legend(fontsize=7)
    else:
        axes[1].text(0.5, 0.5, "over time: trained-10 / reservoir-10 not run", ha="center", va="center",
                     transform=axes[1].transAxes, fontsize=8)
    axes[1].set_xlabel("integration time t")
    axes[1].set_ylim(0, 1)
    fig.tight_layout()
    with atomic_path(out / "ablation.png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)

    lines = [f"Digits ablation: {steps} steps each, seeds {list(seeds)}; mean ± sd; data floor {floor:.3f}", "",
             "| variant | FID-digits | precision | recall | class accuracy |", "|---|---|---|---|---|"]
    for e in summary:
        lines.append(f"| {e['variant']} | {e['fid']:.2f} ± {e['fid_sd']:.2f} "
                     f"| {e['precision']:.3f} ± {e['precision_sd']:.3f} "
                     f"| {e['recall']:.3f} ± {e['recall_sd']:.3f} | {e['class_accuracy']:.3f} ± {e['class_accuracy_sd']:.3f} |")
    for sentence in findings(summary):
        lines += ["", sentence]
    with atomic_path(out / "ablation.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    with atomic_path(out / "ablation.json") as tmp:
        tmp.write_text(json.dumps({"summary": summary, "over_time": time_rows}, indent=2))
