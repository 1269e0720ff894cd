r"""Two more decoders a chip could run: a digital int4 MAC array, and an analog PCM crossbar.

Both start from the decoder's no-grad layers (`models.int8.folded_layers`: each ×2 upsample +
conv3×3 as one stride-2 transposed convolution with folded weights) and are calibrated on the
model's own readout features of `models.int8.CALIBRATION_SAMPLES` ideal samples, as the int8
decoder is (no data set needed).

**int4** (`Int4Decoder`): weights int4, symmetric, one scale per output channel (max |w| / 7);
every layer's input signed 4-bit (the LeakyReLU's negative slope leaves signed inputs), one
scale per tensor from the calibration's 99.9th percentile of |x| (clipping the tail, which a
15-level grid cannot afford to cover); int32 accumulation, the bias and the output tanh in float. There are no int4 CPU kernels: each layer
runs as the float convolution of the integer codes (products of 4-bit codes summed in float32
stay exact integers below 2^24: the int32 accumulator), then times the two scales.

**analog** (`AnalogDecoder`): each convolution is a crossbar of phase-change-memory devices in
differential pairs, the statistical PCM model of Nandakumar et al., ICECS 2019 and Joshi et
al., Nat. Commun. 11, 2473 (2020) (the one IBM's aihwkit implements):

- a layer's weights map to target conductances g_T = |w| / w_max · g_max (g_max = 25 µS) on the
  device of the weight's sign, the other device at 0;
- programming noise, drawn once per chip: g = g_T + N(0, σ_prog), σ_prog(g_T) = max(−1.1731 ĝ² +
  1.9650 ĝ + 0.2635, 0) µS with ĝ = g_T / g_max, on both devices of every pair;
- read noise on every multiply-accumulate: σ = g Q_s √(ln((t + t_read) / (2 t_read))), Q_s =
  min(0.0088 / g_T^0.65, 0.2) (g_T in µS), t_read = 250 ns, read t = `READ_TIME_S` after
  programming; independent per device and MVM, so an output's noise is Gaussian with variance
  Σ_j σ_j² x_j² (computed by a second convolution of x² with σ²);
- no conductance drift (read soon after programming, or drift compensated globally);
- inputs through an 8-bit DAC and outputs through an 8-bit ADC, each over its layer's
  calibrated range (max |·| on the calibration samples); the bias added digitally.

`Un0.decode(..., decoder="int4" | "analog")` uses them (built once per weights, like int8).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from models.int8 import CALIBRATION_SAMPLES, CALIBRATION_SEED, folded_layers

INT4_WEIGHT_BITS = 4
INT4_ACTIVATION_PERCENTILE = 99.9
#: the PCM model's constants (module docstring)
G_MAX_US = 25.0
PROG_COEFF = (0.2635, 1.9650, -1.1731)  # σ_prog(ĝ) = c0 + c1 ĝ + c2 ĝ² µS
READ_Q = (0.0088, 0.65, 0.2)  # Q_s = min(a / g^b, cap), g in µS
T_READ_S = 250e-9
READ_TIME_S = 1.0
DAC_BITS = 8
ADC_BITS = 8
#: the chip (programming-noise draw) and read-noise seeds `Un0.decode` uses
ANALOG_CHIP_SEED = 0


def _calibration_latent(model, samples: int, seed: int) -> Tensor:
    cfg = model.config
    labels = torch.arange(samples) % cfg.num_classes
    theta0 = model.sample_theta0(samples, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        features = model.readout(model.final_phases(labels.to(theta0.device), theta0)).float().cpu()
    return features.reshape(samples, *model.decoder.latent_shape)


def _is_conv(layer: nn.Module) -> bool:
    return isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d))


def _conv(layer: nn.Module, x: Tensor, weight: Tensor) -> Tensor:
    """`layer`'s convolution of x with another weight, no bias."""
    if isinstance(layer, nn.ConvTranspose2d):
        return nn.functional.conv_transpose2d(x, weight, None, layer.stride, layer.padding, layer.output_padding,
                                              layer.groups, layer.dilation)
    return nn.functional.conv2d(x, weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)


def _out_axis(layer: nn.Module) -> int:
    return 1 if isinstance(layer, nn.ConvTranspose2d) else 0  # ConvTranspose2d weight: (in, out, kh, kw)


def _layer_inputs(layers: nn.Sequential, latent: Tensor) -> list[Tensor]:
    """The input of every layer on the calibration latent (float)."""
    inputs, x = [], latent
    with torch.no_grad():
        for layer in layers:
            inputs.append(x)
            x = layer(x)
    return inputs


def _round_to(x: Tensor, scale: Tensor | float, qmax: int) -> Tensor:
    return torch.clamp(torch.round(x / scale), -qmax, qmax) * scale


class Int4Decoder(nn.Module):
    """(B, feature_dim) float readout → (B, C, H, W) images, through int4 layers (module docstring)."""

    def __init__(self, layers: nn.Sequential, input_scales: list[float | None], latent_shape) -> None:
        super().__init__()
        self.layers, self.input_scales, self.latent_shape = layers, input_scales, tuple(latent_shape)
        q = 2 ** (INT4_WEIGHT_BITS - 1) - 1
        self.weights = []  # per layer (integer codes, the per-output-channel scale as a (1, out, 1, 1) row)
        for layer in layers:
            if not _is_conv(layer):
                self.weights.append(None)
                continue
            w = layer.weight.detach()
            axis = _out_axis(layer)
            dims = tuple(d for d in range(w.ndim) if d != axis)
            scale = w.abs().amax(dim=dims, keepdim=True).clamp(min=1e-30) / q
            self.weights.append((torch.clamp(torch.round(w / scale), -q, q), scale.reshape(1, -1, 1, 1)))

    @classmethod
    @torch.no_grad()
    def of(cls, model, *, samples: int = CALIBRATION_SAMPLES, seed: int = CALIBRATION_SEED) -> Int4Decoder:
        layers = folded_layers(model.decoder)
        inputs = _layer_inputs(layers, _calibration_latent(model, samples, seed))
        q = 2 ** (INT4_WEIGHT_BITS - 1) - 1
        scales = [float(torch.quantile(x.abs().flatten()[:2**24].double(), INT4_ACTIVATION_PERCENTILE / 100)) / q
                  if _is_conv(layer) else None for layer, x in zip(layers, inputs)]
        return cls(layers, [max(s, 1e-30) if s is not None else None for s in scales], model.decoder.latent_shape)

    @torch.no_grad()
    def forward(self, features: Tensor) -> Tensor:
        x = features.float().cpu().reshape(features.shape[0], *self.latent_shape)
        q = 2 ** (INT4_WEIGHT_BITS - 1) - 1
        for layer, w, s in zip(self.layers, self.weights, self.input_scales):
            if w is None:
                x = layer(x)
                continue
            codes, scale = w
            acc = _conv(layer, torch.clamp(torch.round(x / s), -q, q), codes)  # the int32 accumulator, exactly
            x = acc * (scale * s) + layer.bias.view(1, -1, 1, 1)
        return x.to(features.dtype)


def prog_sigma_us(g_us: Tensor) -> Tensor:
    """σ of the programmed conductance (µS) at target g (µS)."""
    c0, c1, c2 = PROG_COEFF
    gn = g_us / G_MAX_US
    return torch.clamp(c0 + c1 * gn + c2 * gn * gn, min=0.0)


def read_sigma_us(g_us: Tensor, target_us: Tensor, t_s: float = READ_TIME_S) -> Tensor:
    """σ of one read of a device of conductance g (µS) programmed to `target_us`."""
    a, b, cap = READ_Q
    q = torch.clamp(a / target_us.clamp(min=1e-6) ** b, max=cap)
    return g_us.abs() * q * math.sqrt(math.log((t_s + T_READ_S) / (2 * T_READ_S)))


class AnalogDecoder(nn.Module):
    """(B, feature_dim) float readout → images, every convolution on a PCM crossbar (module docstring)."""

    def __init__(self, layers: nn.Sequential, in_ranges: list, out_ranges: list, latent_shape, *, chip_seed: int,
                 read_seed: int) -> None:
        super().__init__()
        self.layers, self.latent_shape = layers, tuple(latent_shape)
        self.in_ranges, self.out_ranges = in_ranges, out_ranges
        g = torch.Generator().manual_seed(chip_seed)
        self.read_generator = torch.Generator().manual_seed(read_seed)
        self.programmed, self.read_var = [], []
        for layer in layers:
            if not _is_conv(layer):
                self.programmed.append(None)
                self.read_var.append(None)
                continue
            w = layer.weight.detach().double()
            w_max = float(w.abs().max()) or 1.0
            target = w.abs() / w_max * G_MAX_US
            pos_t, neg_t = torch.where(w > 0, target, 0.0), torch.where(w < 0, target, 0.0)
            pos = pos_t + prog_sigma_us(pos_t) * torch.randn(w.shape, generator=g, dtype=torch.float64)
            neg = neg_t + prog_sigma_us(neg_t) * torch.randn(w.shape, generator=g, dtype=torch.float64)
            to_w = w_max / G_MAX_US
            self.programmed.append(((pos - neg) * to_w).float())
            var = (read_sigma_us(pos, pos_t) ** 2 + read_sigma_us(neg, neg_t) ** 2) * to_w ** 2
            self.read_var.append(var.float())

    @classmethod
    @torch.no_grad()
    def of(cls, model, *, samples: int = CALIBRATION_SAMPLES, seed: int = CALIBRATION_SEED,
           chip_seed: int = ANALOG_CHIP_SEED) -> AnalogDecoder:
        layers = folded_layers(model.decoder)
        inputs = _layer_inputs(layers, _calibration_latent(model, samples, seed))
        in_ranges, out_ranges = [], []
        for layer, x in zip(layers, inputs):
            if not _is_conv(layer):
                in_ranges.append(None)
                out_ranges.append(None)
                continue
            in_ranges.append(float(x.abs().max()) or 1.0)
            out_ranges.append(float(_conv(layer, x, layer.weight.detach()).abs().max()) or 1.0)
        return cls(layers, in_ranges, out_ranges, model.decoder.latent_shape, chip_seed=chip_seed,
                   read_seed=chip_seed + 1)

    @torch.no_grad()
    def forward(self, features: Tensor) -> Tensor:
        x = features.float().cpu().reshape(features.shape[0], *self.latent_shape)
        dac, adc = 2 ** (DAC_BITS - 1) - 1, 2 ** (ADC_BITS - 1) - 1
        for layer, w, var, r_in, r_out in zip(self.layers, self.programmed, self.read_var, self.in_ranges,
                                              self.out_ranges):
            if w is None:
                x = layer(x)
                continue
            x = _round_to(x, r_in / dac, dac)
            y = _conv(layer, x, w)
            std = _conv(layer, x * x, var).clamp(min=0).sqrt()
            y = y + std * torch.randn(y.shape, generator=self.read_generator, dtype=y.dtype)
            x = _round_to(y, r_out / adc, adc) + layer.bias.view(1, -1, 1, 1)
        return x.to(features.dtype)
