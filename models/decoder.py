"""The convolutional decoder: latent grid → image (tensor names as in the release)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from models.config import Un0Config

#: nearest ×2 upsampling then a 3-tap filter, per output phase: tap k of the equivalent
#: stride-2, 4-tap transposed filter is F[k] · (w[−1], w[0], w[+1]) (see `fold_upsample_conv`)
_FOLD = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def fold_upsample_conv(weight: Tensor) -> Tensor:
    r"""The stride-2 transposed-convolution weight (C_in, C_out, 4, 4) equal to a nearest ×2
    upsample followed by `weight` (C_out, C_in, 3, 3), padding 1.

    Along one axis, output 2m takes x[m−1]·w[−1] + x[m]·(w[0] + w[+1]) and output 2m + 1 takes
    x[m]·(w[−1] + w[0]) + x[m+1]·w[+1]; a transposed convolution with stride 2 and padding 1
    puts input m at outputs 2m − 1 + k, k = 0..3, so its taps are F·w with F = `_FOLD`
    (rows k, columns −1, 0, +1), and in 2-D T = F W Fᵀ per channel pair. Exact: 16 taps per
    2×2 output block instead of 4 × 9, and no upsampled copy.
    """
    fold = _FOLD.to(weight)
    return torch.einsum("kd,oide,le->iokl", fold, weight, fold)


class UpsampleBlock(nn.Module):
    """Nearest ×2 upsample, conv3×3, LeakyReLU(0.2), conv3×3, LeakyReLU(0.2).

    Without autograd the first two run as one stride-2 transposed convolution with folded
    weights (`fold_upsample_conv`: the same function, 4/9 of its multiply-adds); training
    keeps the layers as the release has them."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Upsample(scale_factor=2.0, mode="nearest"),
            nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c_out, c_out, kernel_size=3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            return self.net(x)
        conv = self.net[1]
        y = nn.functional.conv_transpose2d(x, fold_upsample_conv(conv.weight), conv.bias, stride=2, padding=1)
        return self.net[4](self.net[3](self.net[2](y)))


class Decoder(nn.Module):
    """(B, feature_dim) readout → (B, C, H, W) image in [−1, 1] (tanh)."""

    def __init__(self, config: Un0Config) -> None:
        super().__init__()
        self.latent_shape = (config.latent_channels, config.latent_hw, config.latent_hw)
        blocks, c_in = [], config.latent_channels
        for c_out in config.decoder_widths:
            blocks.append(UpsampleBlock(c_in, c_out))
            c_in = c_out
        self.cascade = nn.Sequential(*blocks)
        self.to_output = nn.Conv2d(c_in, config.image_channels, kernel_size=3, padding=1)
        self.init_output_gain = config.init_output_gain

    def reset_parameters(self, generator: torch.Generator) -> None:
        """The release's initialisation: Kaiming-normal (a=0.2) convs, Xavier-normal
        output conv with gain tanh·init_output_gain, zero biases."""
        for module in self.cascade.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu", generator=generator)
                nn.init.zeros_(module.bias)
        gain = nn.init.calculate_gain("tanh") * self.init_output_gain
        nn.init.xavier_normal_(self.to_output.weight, gain=gain, generator=generator)
        nn.init.zeros_(self.to_output.bias)

    def forward(self, features: Tensor) -> Tensor:
        x = features.reshape(features.shape[0], *self.latent_shape)
        if not x.is_cuda and not torch.is_grad_enabled():
            # CPU inference: oneDNN's convolutions run faster in NHWC
            x = x.contiguous(memory_format=torch.channels_last)
        x = torch.tanh(self.to_output(self.cascade(x)))
        return x.contiguous()


def run_layers(decoder: Decoder, features: Tensor) -> Tensor:
    """The decoder's output with every layer run as defined — the release's upsample and
    conv modules, which forward hooks see — rather than the folded no-grad path: what counts
    of MACs and traffic run on (the output detached)."""
    with torch.enable_grad():
        return decoder(features).detach()


def decoder_macs(decoder: Decoder) -> dict[str, int]:
    """Multiply-accumulates per image of `decoder` as its layers define it (the release's
    upsample + conv; the folded inference path does 4/9 of the first conv's), counted on the
    module itself: one forward pass of one zero latent with hooks on every conv/linear layer
    (MACs = output elements × input channels per group × kernel area), plus the
    element-wise operations (activations, upsampling copies) per image."""
    counts = {"macs": 0, "elementwise": 0}

    def conv_hook(module: nn.Module, inputs, output: Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        else:  # nn.Linear
            k = module.in_features
        counts["macs"] += output[0].numel() * k

    def other_hook(module: nn.Module, inputs, output: Tensor) -> None:
        counts["elementwise"] += output[0].numel()

    handles = []
    for m in decoder.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, (nn.LeakyReLU, nn.Upsample)):
            handles.append(m.register_forward_hook(other_hook))
    try:
        p = next(decoder.parameters())
        features = torch.zeros(1, math.prod(decoder.latent_shape), dtype=p.dtype, device=p.device)
        out = run_layers(decoder, features)
        counts["elementwise"] += out[0].numel()  # tanh
    finally:
        for h in handles:
            h.remove()
    return counts
