"""Training an Un-0 end to end with the drifting loss: AdamW, EMA, checkpoints, resume.

Two objectives (`TrainOptions.objective`):
- ``"drifting"`` (the release's): batches of generated images are drifted toward a data
  set's images of the same classes in an encoder's feature space;
- ``"paired"`` (distillation of a teacher model into the imperfect hardware): the student
  under `TrainOptions.nonideal` and the teacher on ideal equations run on the **same**
  labels and seed phases, and the loss is the mean squared difference of their images in
  every feature space the encoder gives (e.g. pixels at several scales). It needs no data
  set and targets each sample's error directly, where the drifting loss compares batch
  distributions and cannot see a shift smaller than its own sampling noise.

The run's folder holds everything: ``train-state.pt`` (model, EMA, optimizer, schedule,
RNG state, step — written atomically every `checkpoint_every` steps and read back with
``weights_only=True``), ``ema.safetensors`` + ``ema.json`` (the EMA weights in the
project's checkpoint format), ``metrics.jsonl`` (one line per logged step) and
``loss.png``. A run interrupted at any point resumes from its last checkpoint and ends
with the same weights as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from models.checkpoint import save
from models.data import ImageSet
from models.drifting import TEMPERATURES, Encoder, drifting_loss
from models.errors import ConfigError
from models.un0 import Un0
from oscsim import NonIdeal, atomic_path
from oscsim.errors import brief

STATE_FILE = "train-state.pt"
#: chip numbers of hardware-aware training start here (evaluation chips are 0, 1, …)
TRAIN_CHIPS_FROM = 1_000_000


#: the training objectives (module docstring)
OBJECTIVES = ("drifting", "paired")


class TrainError(ValueError):
    """A training run cannot start or resume: names the file/option and the problem."""


#: what a training state holds, and the type of each entry
_STATE_TYPES = {"step": int, "model": dict, "ema": dict, "optimizer": dict, "generator": Tensor, "options": str,
                "config": str}


def read_state(path: str | Path) -> dict[str, Any]:
    """A run folder's training state, checked: a regular file that `torch.load` reads with
    ``weights_only=True`` into a dict with every entry of the right type, whose config and
    options are JSON objects. Anything else (empty, truncated, another file, another type)
    is one TrainError naming the file."""
    from oscsim.fileio import PathCheckError, readable_file

    path = Path(path)
    try:
        readable_file(path)
    except PathCheckError as exc:
        raise TrainError(f"{exc}; cannot resume from it") from None
    if path.stat().st_size == 0:
        raise TrainError(f"{path}: cannot resume, the training state is empty (remove it or use a new --out folder)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
        raise TrainError(f"{path}: cannot resume, unreadable training state ({brief(exc)})") from None
    if not isinstance(state, dict):
        raise TrainError(f"{path}: cannot resume, the training state is a {type(state).__name__}, not a dict")
    for key, kind in _STATE_TYPES.items():
        if key not in state:
            raise TrainError(f"{path}: cannot resume, the training state lacks {key!r}")
        if not isinstance(state[key], kind) or (kind is int and isinstance(state[key], bool)):
            raise TrainError(f"{path}: cannot resume, {key!r} is a {type(state[key]).__name__}, not {kind.__name__}")
    for key in ("options", "config"):
        try:
            value = json.loads(state[key])
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise TrainError(f"{path}: cannot resume, {key!r} is not a JSON object")
    if state["step"] < 0:
        raise TrainError(f"{path}: cannot resume, step {state['step']} is negative")
    return state


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """Settings of one training run (stored in its state; a resume must match them)."""

    steps: int = 3000
    classes_per_step: int = 5
    fake_per_class: int = 48
    real_per_class: int = 64
    lr: float = 5e-3
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99
    warmup: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    checkpoint_every: int = 250
    log_every: int = 10
    seed: int = 0
    freeze_dynamics: bool = False
    temperatures: tuple[float, ...] = TEMPERATURES
    feature_weights: tuple[float, ...] = ()
    #: hardware-aware training: every step's forward pass runs on a fresh chip of this
    #: hardware (chip TRAIN_CHIPS_FROM + step, sample seed = step; quantisation straight-through)
    nonideal: NonIdeal | None = None
    #: "drifting" (toward a data set) or "paired" (toward a teacher on the same seeds; module docstring)
    objective: str = "drifting"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"TrainOptions.objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
        for name in ("steps", "classes_per_step", "fake_per_class", "real_per_class", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"TrainOptions.{name} must be an int >= 1, not {value!r}")
        if self.fake_per_class < 2:
            raise ConfigError("TrainOptions.fake_per_class must be >= 2 (negatives are batch-mates)")
        if self.nonideal is not None and not isinstance(self.nonideal, NonIdeal):
            raise ConfigError(f"TrainOptions.nonideal must be an oscsim.NonIdeal or None, not {type(self.nonideal).__name__}")
        if not self.lr > 0 or not 0 <= self.ema_decay < 1:
            raise ConfigError(f"TrainOptions: lr must be > 0 and ema_decay in [0, 1); got {self.lr}, {self.ema_decay}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["temperatures"], d["feature_weights"] = list(self.temperatures), list(self.feature_weights)
        return d


def _lr_factor(step: int, options: TrainOptions) -> float:
    """Linear warm-up, then cosine decay to 10 %."""
    if step < options.warmup:
        return (step + 1) / options.warmup
    progress = (step - options.warmup) / max(1, options.steps - options.warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


class Trainer:
    """One training run in `out_dir`; `run()` trains (or resumes) to `options.steps`.

    The drifting objective trains toward `data`; the paired one toward `teacher` (a model of
    the same config, kept frozen and run on ideal equations; `data` is then None)."""

    def __init__(self, model: Un0, data: ImageSet | None, encoder: Encoder, options: TrainOptions,
                 out_dir: str | Path, *, provenance: dict[str, Any] | None = None,
                 teacher: Un0 | None = None) -> None:
        if options.objective == "paired":
            if teacher is None or data is not None:
                raise TrainError("the paired objective trains toward a teacher model, not a data set: "
                                 "give teacher= and data=None")
            if teacher.config != model.config:
                raise TrainError("the paired objective's teacher must have the student's config")
            self.teacher = teacher.eval().requires_grad_(False)
        elif data is None or teacher is not None:
            raise TrainError("the drifting objective trains toward a data set: give data= and no teacher")
        else:
            self.teacher = None
        if data is not None:
            self._check_data(model, data, options)
        self.model, self.data, self.encoder, self.options = model.train(), data, encoder, options
        self.out = Path(out_dir)
        self.provenance = provenance or {}
        if options.freeze_dynamics:
            for p in model.dynamics.parameters():
                p.requires_grad_(False)
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=options.lr, betas=(options.beta1, options.beta2),
                                           weight_decay=options.weight_decay)
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.generator = torch.Generator().manual_seed(options.seed)
        self.step = 0
        if data is not None:
            self.by_class = [torch.nonzero(data.labels == c).squeeze(1) for c in range(data.num_classes)]

    @staticmethod
    def _check_data(model: Un0, data: ImageSet, options: TrainOptions) -> None:
        if data.num_classes != model.config.num_classes:
            raise TrainError(f"data set {data.name} has {data.num_classes} classes, the model {model.config.num_classes}")
        if tuple(data.images.shape[1:]) != model.config.image_shape:
            raise TrainError(f"data set {data.name} images are {tuple(data.images.shape[1:])}, the model makes {model.config.image_shape}")
        if options.classes_per_step > data.num_classes:
            raise TrainError(f"classes_per_step {options.classes_per_step} > the data's {data.num_classes} classes")
        if min(int((data.labels == c).sum()) for c in range(data.num_classes)) == 0:
            raise TrainError(f"data set {data.name} has a class with no images")

    # --- state ------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema,
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "options": json.dumps(self.options.to_dict()),
            "config": json.dumps(self.model.config.to_dict()),
        }

    def save_checkpoint(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out / STATE_FILE) as tmp:
            torch.save(self._state(), tmp)
        ema_model = Un0(self.model.config)
        ema_model.load_state_dict(self.ema)
        save(ema_model, self.out / "ema", extra={"step": self.step, "options": self.options.to_dict(), **self.provenance})

    def try_resume(self) -> bool:
        path = self.out / STATE_FILE
        if not path.exists() and not path.is_symlink():
            return False
        state = read_state(path)
        if json.loads(state["config"]) != self.model.config.to_dict():
            raise TrainError(f"{path}: the run was started with another model config; use a new --out folder")
        saved = json.loads(state["options"])
        differ = sorted(k for k, v in self.options.to_dict().items() if k != "steps" and saved.get(k) != v)
        if differ:
            raise TrainError(f"{path}: the run was started with other options ({', '.join(differ)}); use a new --out folder")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise TrainError(f"{path}: cannot resume, the training state does not fit this run ({brief(exc)})") from None
        self.ema = state["ema"]
        self.step = int(state["step"])
        self._truncate_log()
        return True

    def _truncate_log(self) -> None:
        log = self.out / "metrics.jsonl"
        if log.is_file():
            lines = [ln for ln in log.read_text().splitlines() if ln and json.loads(ln)["step"] <= self.step]
            with atomic_path(log) as tmp:
                tmp.write_text("".join(ln + "\n" for ln in lines))

    # --- one step -----------------------------------------------------------------------
    def _features(self, images: Tensor) -> list[Tensor]:
        return [f.flatten(1) for f in self.encoder(images)]

    def train_step(self) -> dict[str, float]:
        o, g, cfg = self.options, self.generator, self.model.config
        classes = torch.randperm(cfg.num_classes, generator=g)[: o.classes_per_step]
        labels = classes.repeat_interleave(o.fake_per_class)
        dropped = torch.rand(labels.shape[0], generator=g) < cfg.class_dropout
        theta0 = self.model.sample_theta0(labels.shape[0], generator=g)
        hardware = None
        if o.nonideal is not None:
            hardware = o.nonideal.replace(chips=1, chip_seed=TRAIN_CHIPS_FROM + self.step, sample_seed=self.step)
        conditioned = torch.where(dropped, -1, labels)
        if self.teacher is not None:
            with torch.no_grad():
                target = self._features(self.teacher(conditioned, theta0))
            fake = self._features(self.model(conditioned, theta0, nonideal=hardware))
            loss, stats = paired_loss(fake, target, weights=o.feature_weights or None)
        else:
            real_idx = torch.cat([self.by_class[c][torch.randint(len(self.by_class[c]), (o.real_per_class,),
                                                                 generator=g)] for c in classes.tolist()])
            with torch.no_grad():
                real = self._features(self.data.images[real_idx])
            fake = self._features(self.model(conditioned, theta0, nonideal=hardware))
            loss, stats = drifting_loss(fake, real, labels, self.data.labels[real_idx],
                                        weights=o.feature_weights or None, temperatures=o.temperatures)
        for group in self.optimizer.param_groups:
            group["lr"] = o.lr * _lr_factor(self.step, o)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, o.grad_clip))
        self.optimizer.step()
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                self.ema[k].lerp_(v, 1.0 - o.ema_decay)
        self.step += 1
        return {"loss": float(loss.detach()), "grad_norm": grad_norm, "lr": self.optimizer.param_groups[0]["lr"], **stats}

    # --- the loop -----------------------------------------------------------------------
    def run(self, *, progress: bool = True, stop_after: int | None = None,
            on_checkpoint: Callable[[int], None] | None = None) -> Path:
        """Train to `options.steps` (resuming if the folder holds a run); returns the EMA
        checkpoint path. `stop_after` ends early after that many steps (for tests)."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.step == 0:
            self.try_resume()
        log = open(self.out / "metrics.jsonl", "a")
        bar = tqdm(total=self.options.steps, initial=self.step, desc="train", unit="step", disable=not progress)
        done = 0
        try:
            while self.step < self.options.steps and (stop_after is None or done < stop_after):
                t0 = time.perf_counter()
                metrics = self.train_step()
                metrics["step_time_s"] = time.perf_counter() - t0
                done += 1
                bar.update(1)
                if self.step % self.options.log_every == 0 or self.step == self.options.steps:
                    log.write(json.dumps({"step": self.step, **metrics}) + "\n")
                    log.flush()
                    bar.set_postfix(loss=f"{metrics['loss']:.4f}", s_per_step=f"{metrics['step_time_s']:.2f}")
                if self.step % self.options.checkpoint_every == 0 or self.step == self.options.steps:
                    self.save_checkpoint()
                    if on_checkpoint is not None:
                        on_checkpoint(self.step)
        finally:
            bar.close()
            log.close()
        plot_losses(self.out / "metrics.jsonl", self.out / "loss.png")
        return self.out / "ema.safetensors"


def paired_loss(fake: Sequence[Tensor], target: Sequence[Tensor], *,
                weights: Sequence[float] | None = None) -> tuple[Tensor, dict[str, float]]:
    """The paired objective: Σ_s w_s · mean((fake_s − target_s)²) over the encoder's feature
    sets s (sample i of `fake` against sample i of `target`: same labels and seed phases),
    with w_s = 1/len by default. Returns the loss and each set's mean squared error."""
    if len(fake) != len(target) or any(f.shape != t.shape for f, t in zip(fake, target)):
        raise ValueError("paired_loss: the student's and the teacher's feature sets differ in number or shape")
    w = [1.0 / len(fake)] * len(fake) if weights is None else list(weights)
    if len(w) != len(fake):
        raise ValueError(f"paired_loss: {len(w)} weights for {len(fake)} feature sets")
    mse = [torch.mean((f - t) ** 2) for f, t in zip(fake, target)]
    loss = sum(wi * m for wi, m in zip(w, mse))
    return loss, {f"mse_{i}": float(m.detach()) for i, m in enumerate(mse)}


def plot_losses(log_path: Path, png: Path) -> None:
    """The loss and the raw drift of a metrics log, as a PNG (written atomically).

    The drifting loss is normalised per temperature (each V is scaled to unit RMS), so
    its value stays near a constant; the mean ‖V‖ before normalisation is the quantity
    that falls as the generated distribution approaches the data's."""
    rows = [json.loads(ln) for ln in log_path.read_text().splitlines() if ln]
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    drift_keys = sorted(k for k in rows[0] if k.startswith("drift_"))
    mse_keys = sorted(k for k in rows[0] if k.startswith("mse_"))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.5), dpi=120)
    ax0.plot(steps, [r["loss"] for r in rows], lw=0.8)
    if mse_keys:  # the paired objective: each feature set's mean squared error to the teacher
        ax0.set_ylabel("paired loss (weighted MSE to the teacher)")
        ax0.set_yscale("log")
        for key in mse_keys:
            ax1.plot(steps, [r.get(key, float("nan")) for r in rows], lw=0.8, label=f"feature set {key[4:]}")
        ax1.set_ylabel("MSE to the teacher")
    else:
        ax0.set_ylabel("drifting loss (normalised)")
        for key in (k for k in drift_keys if k.endswith("t0.2")):
            ax1.plot(steps, [r.get(key, float("nan")) for r in rows], lw=0.8, label=key.removeprefix("drift_"))
        ax1.set_ylabel("mean ‖V‖ before normalisation")
    ax1.set_yscale("log")
    if drift_keys or mse_keys:
        ax1.legend(fontsize=7)
    for ax in (ax0, ax1):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def pixel_encoder(images: Tensor) -> Sequence[Tensor]:
    """The simplest frozen encoder: raw pixels."""
    return [images.flatten(1)]
