"""Feature extractors for image metrics: the digits classifier ("FID-digits").

`DigitsNet` is a small CNN trained on the digits train split; its penultimate layer (128
numbers) is the feature space of FID-digits and precision/recall on digits. Two are
shipped, trained from different seeds: ``digits-eval`` scores models, ``digits-train``
is the frozen encoder of the drifting loss — so the model is never trained on the
very features it is scored in.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from oscsim import atomic_path

SHIPPED = ("digits-eval", "digits-train")
#: Weight of the raw-pixel set beside the three CNN layers in the digits drifting loss.
DIGITS_PIXEL_WEIGHT = 0.25


class DigitsNet(nn.Module):
    """8×8 grey digits → 10 logits; `features` gives the 128-d penultimate layer."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * width, 4 * width, 3, padding=1)
        self.fc1 = nn.Linear(4 * width * 4, 128)
        self.fc2 = nn.Linear(128, 10)

    def layers(self, x: Tensor) -> list[Tensor]:
        """Activations after conv1, conv2 (pooled to 4×4), conv3 (pooled to 2×2), fc1."""
        a1 = F.relu(self.conv1(x))
        a2 = F.max_pool2d(F.relu(self.conv2(a1)), 2)
        a3 = F.max_pool2d(F.relu(self.conv3(a2)), 2)
        f = F.relu(self.fc1(a3.flatten(1)))
        return [a1, a2, a3, f]

    def features(self, x: Tensor) -> Tensor:
        return self.layers(x)[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.features(x))


def _shift(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random translations by up to one pixel (background = −1)."""
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    dy, dx = torch.randint(0, 3, (2,), generator=generator).tolist()
    return padded[..., dy:dy + x.shape[-2], dx:dx + x.shape[-1]]


def train_digits_net(train_images: Tensor, train_labels: Tensor, *, seed: int, epochs: int = 60,
                     batch_size: int = 64, lr: float = 2e-3) -> DigitsNet:
    """AdamW with cosine decay and ±1 px shifts; deterministic given `seed`."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # nn.Module default initialisation draws from the global RNG
    net = DigitsNet()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * -(-len(train_labels) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(train_labels), generator=g)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(net(_shift(train_images[idx], g)), train_labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: DigitsNet, images: Tensor, labels: Tensor) -> float:
    return float((net(images).argmax(1) == labels).float().mean())


def _weights_path(name: str) -> Path:
    return Path(str(resources.files("analysis").joinpath("weights", f"{name}.safetensors")))


def save_digits_net(net: DigitsNet, path: str | Path, *, info: dict) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp),
                  metadata={"info": json.dumps(info)})


def load_digits_net(name_or_path: str | Path = "digits-eval") -> tuple[DigitsNet, str]:
    """A shipped net by name (``digits-eval``, ``digits-train``) or a file; returns the
    frozen net in eval mode and its extractor id (name and weights hash)."""
    path = _weights_path(str(name_or_path)) if str(name_or_path) in SHIPPED else Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no digits feature-network weights (train them: python -m analysis.train_features)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    net = DigitsNet()
    net.load_state_dict(load_file(str(path)))
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval(), f"digits-cnn:{path.stem}:{digest}"


def digits_encoder(name: str = "digits-train"):
    """The drifting loss's frozen encoder on digits: three layers of a shipped DigitsNet
    (conv2 at 4×4, conv3 at 2×2, the 128-d penultimate layer) plus raw pixels."""
    net, _ = load_digits_net(name)

    def encode(images: Tensor) -> list[Tensor]:
        _, a2, a3, f = net.layers(images)
        return [a2.flatten(1), a3.flatten(1), f, images.flatten(1)]

    return encode


def digits_feature_weights(pixel_weight: float = DIGITS_PIXEL_WEIGHT) -> tuple[float, ...]:
    """Loss weights of `digits_encoder`'s four feature sets (three CNN layers, pixels)."""
    return (1.0, 1.0, 1.0, pixel_weight)
