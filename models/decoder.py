"""The convolutional decoder: latent grid → image (tensor names as in the release)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.config import Un0Config


class UpsampleBlock(nn.Module):
    """Nearest ×2 upsample, conv3×3, LeakyReLU(0.2), conv3×3, LeakyReLU(0.2)."""

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
        return self.net(x)


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
