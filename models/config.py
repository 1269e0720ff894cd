"""`Un0Config`: every architectural choice of an Un-0, and the published sizes."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from models.errors import ConfigError

RELATIVIZATIONS = ("absolute", "mean_relative", "ref_oscillator", "pairwise")
ENCODINGS = ("raw", "sin", "sin_cos")
PARAMETERIZATIONS = ("standard", "mup")
SOLVERS = ("euler", "heun", "rk4")


@dataclass(frozen=True, kw_only=True)
class Un0Config:
    """Architecture of one Un-0 (what rebuilds the module exactly; stored in checkpoints).

    The oscillator block has N main and N_c conditioning oscillators; readout gives
    `feature_dim` numbers reshaped to a (latent_channels, latent_hw, latent_hw) grid; the
    decoder has log2(image_size / latent_hw) blocks [nearest ×2, conv3×3, LeakyReLU(0.2),
    conv3×3, LeakyReLU(0.2)] halving the width (never below `decoder_min_width`), then
    a conv3×3 to `image_channels` and tanh.
    """

    name: str = "custom"
    dataset: str = "custom"
    n: int
    n_cond: int
    num_classes: int
    image_size: int
    image_channels: int = 3
    latent_hw: int = 4
    parameterization: str = "standard"
    relativization: str = "mean_relative"
    encoding: str = "sin_cos"
    solver: str = "euler"
    num_steps: int = 10
    integration_time: float = 1.0
    class_dropout: float = 0.1
    decoder_min_width: int = 32
    init_output_gain: float = 0.5
    #: every upsample block's width divided by this (at least 1 channel): a smaller decoder
    #: (`models.distill`); 1 is the release's architecture
    decoder_width_divisor: int = 1

    def __post_init__(self) -> None:
        ints = {
            "n": 2, "n_cond": 0, "num_classes": 1, "image_size": 1, "image_channels": 1,
            "latent_hw": 1, "num_steps": 0, "decoder_min_width": 1, "decoder_width_divisor": 1,
        }
        for field, minimum in ints.items():
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"Un0Config.{field} must be an int >= {minimum}, not {value!r}")
        choices = {
            "parameterization": PARAMETERIZATIONS,
            "relativization": RELATIVIZATIONS,
            "encoding": ENCODINGS,
            "solver": SOLVERS,
        }
        for field, valid in choices.items():
            if getattr(self, field) not in valid:
                raise ConfigError(
                    f"Un0Config.{field} must be one of {', '.join(valid)}; got {getattr(self, field)!r}"
                )
        for field in ("integration_time", "init_output_gain"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"Un0Config.{field} must be a positive number, not {value!r}")
        if not isinstance(self.class_dropout, (int, float)) or not 0.0 <= self.class_dropout <= 1.0:
            raise ConfigError(f"Un0Config.class_dropout must be in [0, 1], not {self.class_dropout!r}")
        ratio = self.image_size / self.latent_hw
        if ratio < 1 or not float(ratio).is_integer() or int(ratio) & (int(ratio) - 1):
            raise ConfigError(
                f"Un0Config.image_size ({self.image_size}) must be latent_hw ({self.latent_hw}) "
                "times a power of two"
            )
        if self.feature_dim % (self.latent_hw**2):
            raise ConfigError(
                f"readout gives {self.feature_dim} features, not divisible by the "
                f"{self.latent_hw}x{self.latent_hw} latent grid"
            )

    # --- derived shapes ----------------------------------------------------------------
    @property
    def readout_width(self) -> int:
        """Phases after relativization: N, or N² for 'pairwise'."""
        return self.n * self.n if self.relativization == "pairwise" else self.n

    @property
    def feature_dim(self) -> int:
        """Numbers the readout hands the decoder (sin_cos doubles them)."""
        return (2 if self.encoding == "sin_cos" else 1) * self.readout_width

    @property
    def latent_channels(self) -> int:
        """C_l of the (C_l, h_l, w_l) latent grid."""
        return self.feature_dim // (self.latent_hw**2)

    @property
    def num_upsamples(self) -> int:
        return int(round(math.log2(self.image_size // self.latent_hw)))

    @property
    def decoder_widths(self) -> tuple[int, ...]:
        """Output channels of each upsample block."""
        widths, width = [], self.latent_channels
        for _ in range(self.num_upsamples):
            width = max(width // 2, self.decoder_min_width)
            widths.append(max(width // self.decoder_width_divisor, 1))
        return tuple(widths)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_channels, self.image_size, self.image_size)

    # --- parameter counts (checked in tests against the instantiated module) -----------
    @property
    def oscillator_params(self) -> int:
        """N² + N + classes·N_c·N + N_c² + N_c (K, ω, K̃, C, ν as stored)."""
        n, c = self.n, self.n_cond
        return n * n + n + self.num_classes * c * n + c * c + c

    @property
    def decoder_params(self) -> int:
        count, width_in = 0, self.latent_channels
        for width in self.decoder_widths:
            count += width_in * width * 9 + width + width * width * 9 + width
            width_in = width
        return count + width_in * self.image_channels * 9 + self.image_channels

    @property
    def total_params(self) -> int:
        return self.oscillator_params + self.decoder_params

    # --- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Un0Config:
        """Build from a dict; unknown keys are an error that lists the known ones."""
        if not isinstance(data, dict):
            raise ConfigError(f"a Un0Config must be a JSON object, not {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown Un0Config field(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as exc:  # a required field is missing
            raise ConfigError(f"incomplete Un0Config: {exc}") from None

    def replace(self, **changes: Any) -> Un0Config:
        return dataclasses.replace(self, **changes)


def _cifar10(n: int) -> Un0Config:
    return Un0Config(
        name=f"Un-0.n{n}", dataset="cifar10", n=n, n_cond=8, num_classes=10, image_size=32,
        parameterization="standard", relativization="mean_relative", solver="euler", num_steps=10,
    )


def _imagenet64(n: int) -> Un0Config:
    return Un0Config(
        name=f"Un-0.n{n}", dataset="imagenet64", n=n, n_cond=1, num_classes=1000, image_size=64,
        parameterization="mup", relativization="ref_oscillator", solver="euler", num_steps=10,
        init_output_gain=1.0,
    )


def _digits(n: int) -> Un0Config:
    return Un0Config(
        name=f"digits-n{n}", dataset="digits", n=n, n_cond=8, num_classes=10, image_size=8,
        image_channels=1, relativization="mean_relative", solver="euler", num_steps=10,
    )


#: The six sizes of the release's parameter table, then the project's own small sizes
#: (8×8 one-channel digits, one upsample block) that train on a laptop CPU.
PUBLISHED: dict[str, Un0Config] = {
    c.name.removeprefix("Un-0."): c
    for c in (
        _cifar10(1024), _cifar10(2048), _cifar10(4096),
        _imagenet64(6656), _imagenet64(10240), _imagenet64(16384),
        _digits(512), _digits(64),
    )
}

#: The release's table: (total, oscillator, decoder) parameters in millions, FID@50k.
RELEASE_TABLE: dict[str, tuple[float, float, float, float]] = {
    "n1024": (1.29, 1.13, 0.16, 11.01),
    "n2048": (4.94, 4.36, 0.58, 9.32),
    "n4096": (19.43, 17.11, 2.33, 8.76),
    "n6656": (57.17, 50.96, 6.21, 8.41),
    "n10240": (129.80, 115.11, 14.69, 8.01),
    "n16384": (322.44, 284.84, 37.61, 6.74),
}
