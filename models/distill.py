"""A smaller decoder: the model's decoder distilled into narrower layers.

The decoder is where a chip spends most of its energy once the phase wires are priced well
(docs/energy.md), and its multiply-accumulates go as the square of its widths. `distill_decoder`
keeps the model's oscillators as they are and trains a decoder of other `widths` to reproduce
the model's own decoder on the model's own readout features: the ideal dynamics of
`features` seed phases over every class (fresh seeds per epoch are not needed: the features
are the dynamics' outputs, which the decoder only ever sees), the student's images against
the teacher's by mean squared error, Adam with a cosine schedule. No data set is needed, so
every checkpoint family distils; what it costs in FID is for the scorers to say
(`un0hw fid`, `un0hw explore` with the distilled checkpoint).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models.decoder import Decoder
from models.errors import ConfigError

#: seed phases of the feature set (never an evaluation seed of the scorers: those are 1000·k)
FEATURE_SEED = 5_555_555


def readout_features(model, samples: int, *, seed: int = FEATURE_SEED, batch: int = 1024) -> Tensor:
    """(samples, feature_dim) readout features of the ideal dynamics, classes in turn."""
    out = []
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for start in range(0, samples, batch):
            m = min(batch, samples - start)
            labels = (torch.arange(start, start + m) % model.config.num_classes).to(model.dynamics.K.device)
            theta0 = model.sample_theta0(m, generator=g)
            out.append(model.readout(model.final_phases(labels, theta0)).float().cpu())
    return torch.cat(out)


def distill_decoder(model, divisor: int, *, steps: int = 3000, batch: int = 256, lr: float = 2e-3,
                    features: int = 8192, seed: int = 0, progress: bool = True):
    """A copy of `model` whose decoder's widths are `divisor` times narrower
    (`Un0Config.decoder_width_divisor`, on top of the model's own), trained to match
    `model`'s decoder; returns (student, {rms_before, rms_after}: the RMS image error on
    held-out features at initialisation and after training)."""
    import copy

    from tqdm import tqdm

    cfg = model.config
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 2:
        raise ConfigError(f"--width-divisor must be an integer >= 2 (the decoder's widths divided by it), not {divisor!r}")
    student_cfg = cfg.replace(decoder_width_divisor=cfg.decoder_width_divisor * divisor)
    teacher = model.decoder.eval()
    feats = readout_features(model, features + 1024)
    train, held = feats[:features], feats[features:]
    with torch.no_grad():
        target, held_target = teacher(train), teacher(held)
    g = torch.Generator().manual_seed(seed)
    decoder = Decoder(student_cfg)
    decoder.reset_parameters(g)
    opt = torch.optim.Adam(decoder.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))

    def held_rms() -> float:
        with torch.no_grad():
            return float((decoder(held) - held_target).pow(2).mean().sqrt())

    before = held_rms()
    decoder.train()
    for _ in tqdm(range(steps), desc="distil decoder", unit="step", disable=not progress):
        idx = torch.randint(0, features, (batch,), generator=g)
        loss = (decoder(train[idx]) - target[idx]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    decoder.eval()
    student = copy.deepcopy(model)
    student.config = student_cfg
    student.decoder = decoder
    return student, {"rms_before": before, "rms_after": held_rms()}
