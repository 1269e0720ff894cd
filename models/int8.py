"""An int8 decoder: the decoder as a chip's digital int8 MAC array runs it, on int8 CPU kernels.

`Int8Decoder.of(model)` quantises a model's decoder after training (post-training static
quantisation, torch.ao's FX graph mode on the fbgemm engine):

- the layers are those of the no-grad path (`models.decoder`): each nearest ×2 upsample +
  conv3×3 as one stride-2 transposed convolution with folded weights, then conv3×3, the
  LeakyReLUs, the output conv and tanh;
- weights int8, symmetric: per output channel for the convolutions, per tensor for the
  transposed ones; activations uint8 with a histogram-calibrated scale per tensor (the
  engine's default reduced range, 7 bits, keeps its int16 accumulation from saturating);
- calibrated on the model's own readout features of `CALIBRATION_SAMPLES` ideal samples
  (every class in turn, seed phases of `CALIBRATION_SEED`), so it needs no data set.

Why fbgemm: on torch 2.13 the x86 and onednn engines' quantised transposed convolution
gives wrong images (RMS error 0.5 on [−1, 1] against the float decoder, measured), while
fbgemm's agrees with the float decoder to its quantisation error. Its error against the
float decoder is stated in docs/models.md and bounded by tests/models/test_int8.py.

`Un0.generate(..., decoder="int8")` uses it (built once per weights, like `Dynamics.params`).
"""

from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from models.decoder import Decoder, fold_upsample_conv
from models.errors import ConfigError

#: ideal samples whose readout features calibrate the activation scales
CALIBRATION_SAMPLES = 512
#: seed of their seed phases (never an evaluation seed of the scorers: those are 1000·k)
CALIBRATION_SEED = 7_777_777
#: the quantised engine (module docstring)
ENGINE = "fbgemm"
#: the decoders `Un0.generate` takes ("int4" and "analog": `models.lowbit`)
DECODERS = ("float", "int8", "int4", "analog")


@contextmanager
def _engine():
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = ENGINE
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


def check_decoder(decoder: str) -> None:
    """`decoder` is one of `DECODERS`, and "int8" runs here: it needs the fbgemm engine (an
    x86 CPU build of torch). Raises ConfigError naming what is wrong."""
    if decoder not in DECODERS:
        raise ConfigError(f"decoder must be one of {', '.join(DECODERS)}, not {decoder!r}")
    if decoder == "int8" and ENGINE not in torch.backends.quantized.supported_engines:
        raise ConfigError(f"decoder int8 needs torch's {ENGINE} engine (x86 CPUs); this torch has "
                          f"{', '.join(torch.backends.quantized.supported_engines)}")


def folded_layers(decoder: Decoder) -> nn.Sequential:
    """The decoder's no-grad layers as plain modules (float, CPU copies): per upsample block
    a stride-2 transposed conv with folded weights, LeakyReLU, conv, LeakyReLU; then the
    output conv and tanh. Equal to `decoder` to float round-off."""
    layers: list[nn.Module] = []
    for block in decoder.cascade:
        up, conv2 = block.net[1], block.net[3]
        t = nn.ConvTranspose2d(up.in_channels, up.out_channels, kernel_size=4, stride=2, padding=1)
        with torch.no_grad():
            t.weight.copy_(fold_upsample_conv(up.weight.detach().float().cpu()))
            t.bias.copy_(up.bias.detach().float().cpu())
        layers += [t, nn.LeakyReLU(0.2), copy.deepcopy(conv2).float().cpu(), nn.LeakyReLU(0.2)]
    layers += [copy.deepcopy(decoder.to_output).float().cpu(), nn.Tanh()]
    return nn.Sequential(*layers).eval()


class Int8Decoder(nn.Module):
    """(B, feature_dim) float readout → (B, C, H, W) images in [−1, 1], through int8 layers."""

    def __init__(self, quantized: nn.Module, latent_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.quantized, self.latent_shape = quantized, latent_shape

    @classmethod
    @torch.no_grad()
    def of(cls, model, *, samples: int = CALIBRATION_SAMPLES, seed: int = CALIBRATION_SEED) -> Int8Decoder:
        """Quantise `model`'s decoder, calibrated on its own readout features (module docstring)."""
        from torch.ao.quantization import MinMaxObserver, QConfig, get_default_qconfig_mapping
        from torch.ao.quantization.observer import HistogramObserver
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        check_decoder("int8")
        cfg = model.config
        labels = torch.arange(samples) % cfg.num_classes
        theta0 = model.sample_theta0(samples, generator=torch.Generator().manual_seed(seed))
        features = model.readout(model.final_phases(labels.to(theta0.device), theta0)).float().cpu()
        latent = features.reshape(samples, *model.decoder.latent_shape)
        float_layers = folded_layers(model.decoder)
        transposed = QConfig(activation=HistogramObserver.with_args(reduce_range=True),
                             weight=MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric))
        mapping = get_default_qconfig_mapping(ENGINE).set_object_type(nn.ConvTranspose2d, transposed)
        with _engine(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation and observer notices
            prepared = prepare_fx(float_layers, mapping, (latent[:1],))
            for i in range(0, samples, 128):
                prepared(latent[i:i + 128])
            quantized = convert_fx(prepared)
        return cls(quantized, tuple(model.decoder.latent_shape))

    @torch.no_grad()
    def forward(self, features: Tensor) -> Tensor:
        if features.device.type != "cpu":
            raise ConfigError(f"the int8 decoder runs on the CPU; the features are on {features.device}")
        x = features.float().reshape(features.shape[0], *self.latent_shape)
        with _engine():
            return self.quantized(x).to(features.dtype)
