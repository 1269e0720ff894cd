"""`Un0`: the oscillator block, its readout and the decoder, as one module."""

from __future__ import annotations

import secrets

import torch
from torch import Tensor, nn

from models.config import Un0Config
from models.decoder import Decoder
from models.readout import readout
from oscsim import KuramotoParams, NonIdeal, simulate, uniform_phases


class Dynamics(nn.Module):
    """The learned oscillator parameters, stored as the release stores them.

    K (N, N), omega (1, N), K_cond = C (N_c, N_c), omega_cond = ν (1, N_c),
    K_drive = K̃ (classes, N, N_c). Diagonals of K and K_cond are ignored.
    """

    def __init__(self, config: Un0Config) -> None:
        super().__init__()
        n, c = config.n, config.n_cond
        self.parameterization = config.parameterization
        self.K = nn.Parameter(torch.empty(n, n))
        self.omega = nn.Parameter(torch.empty(1, n))
        self.K_cond = nn.Parameter(torch.empty(c, c))
        self.omega_cond = nn.Parameter(torch.empty(1, c))
        self.K_drive = nn.Parameter(torch.empty(config.num_classes, n, c))
        #: the circuit's coupling function as a shape on each coupler (`oscsim.shaped`), or None:
        #: pure Kuramoto sine coupling (not part of the state dict: the hardware's, not learned)
        self.shape = None
        #: the inter-tile links the couplings and the drive are heard over (`oscsim.links.Links`:
        #: a delay and jitter of the received phases), or None: every coupling hears its sender
        #: as it is (set by `compiler.ArrayIR.to_model` for a linked phase distribution)
        self.links = None
        self._params_cache: tuple | None = None  # (key, KuramotoParams) of the last no-grad params()

    @property
    def scales(self) -> tuple[float, float, float]:
        """Forward-pass multipliers of (K, K_cond, K_drive): μP uses n^-½, n_c^-½, n_c^-½."""
        if self.parameterization == "mup":
            n, c = self.K.shape[0], max(self.K_cond.shape[0], 1)
            return n**-0.5, c**-0.5, c**-0.5
        return 1.0, 1.0, 1.0

    def reset_parameters(self, generator: torch.Generator) -> None:
        """The release's initialisation: ω, ν ~ N(0, 1); couplings ~ N(0, 1) scaled by
        fan-in^-½ under 'standard' (μP applies that scale in the forward pass instead)."""
        n, c = self.K.shape[0], max(self.K_cond.shape[0], 1)
        k_std, c_std = (1.0, 1.0) if self.parameterization == "mup" else (n**-0.5, c**-0.5)
        with torch.no_grad():
            for p, std in (
                (self.omega, 1.0), (self.K, k_std), (self.omega_cond, 1.0),
                (self.K_cond, c_std), (self.K_drive, c_std),
            ):
                p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * std)
            self.K.fill_diagonal_(0.0)
            self.K_cond.fill_diagonal_(0.0)

    def params(self) -> KuramotoParams:
        """The effective system the integrators take (diagonals zeroed, scales applied), with
        the coupling function of `shape` on every coupler when one is set.

        Without autograd (generation, evaluation) the result is kept and returned again
        while no weight has changed (each tensor's storage and in-place version counter are
        the key, with the shape): the μP-scaled N×N coupling is built once, not on every
        `generate`. With autograd it is built anew every call (training needs the graph)."""
        if not torch.is_grad_enabled():
            key = (tuple((t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape)) for t in
                         (self.K, self.omega, self.K_drive, self.K_cond, self.omega_cond)), self.shape)
            if self._params_cache is not None and self._params_cache[0] == key:
                return self._params_cache[1]
            params = self._build_params()
            self._params_cache = (key, params)
            return params
        self._params_cache = None
        return self._build_params()

    def _build_params(self) -> KuramotoParams:
        k_scale, c_scale, d_scale = self.scales
        params = KuramotoParams.from_raw(
            K=self.K, omega=self.omega, drive=self.K_drive, C=self.K_cond, nu=self.omega_cond,
            k_scale=k_scale, c_scale=c_scale, drive_scale=d_scale,
        )
        return params if self.shape is None else self.shape.apply(params)


class Un0(nn.Module):
    """Class-conditional Un-0: seed phases → Kuramoto dynamics to T → readout → decoder.

    Build with `Un0.init(config, seed)` (initialised) or `Un0(config)` (uninitialised
    storage, e.g. on the meta device or before loading a state dict).
    """

    def __init__(self, config: Un0Config) -> None:
        super().__init__()
        self.config = config
        self.dynamics = Dynamics(config)
        self.decoder = Decoder(config)
        self._int8_cache: tuple | None = None
        self._lowbit_cache: dict[str, tuple] = {}  # kind → (weights key, decoder), `lowbit_decoder`

    @classmethod
    def init(cls, config: Un0Config, *, seed: int) -> Un0:
        """A freshly initialised model, reproducible from `seed`."""
        model = cls(config)
        generator = torch.Generator().manual_seed(seed)
        model.dynamics.reset_parameters(generator)
        model.decoder.reset_parameters(generator)
        return model

    # --- pieces ---------------------------------------------------------------------
    def params(self) -> KuramotoParams:
        return self.dynamics.params()

    def sample_theta0(self, batch: int, *, generator: torch.Generator) -> Tensor:
        """(B, N + N_c) seeds, uniform in [−π, π), main and conditioning in one draw."""
        p = self.dynamics.K
        width = self.config.n + self.config.n_cond
        return uniform_phases(batch, width, generator=generator, dtype=p.dtype, device=p.device)

    def readout(self, main_phases: Tensor) -> Tensor:
        return readout(main_phases, relativization=self.config.relativization, encoding=self.config.encoding)

    def decode(self, main_phases: Tensor, *, decoder: str = "float") -> Tensor:
        """(B, N) main phases at T → (B, C, H, W) images in [−1, 1]; `decoder` "int8": the
        int8 decoder (`models.int8`), built once while the weights stay the same."""
        from models.int8 import check_decoder

        check_decoder(decoder)
        if decoder == "float":
            return self.decoder(self.readout(main_phases))
        if decoder == "int8":
            return self.int8_decoder()(self.readout(main_phases))
        return self.lowbit_decoder(decoder)(self.readout(main_phases))

    def lowbit_decoder(self, kind: str):
        """This model's `models.lowbit` decoder of `kind` ("int4", "analog"), calibrated on its
        own samples and kept while no weight has changed (as `int8_decoder`)."""
        from models.lowbit import AnalogDecoder, Int4Decoder

        key = (kind, tuple((t.data_ptr(), t._version) for t in self.parameters()))
        if self._lowbit_cache.get(kind, (None,))[0] != key:
            self._lowbit_cache[kind] = (key, (Int4Decoder if kind == "int4" else AnalogDecoder).of(self))
        return self._lowbit_cache[kind][1]

    def int8_decoder(self):
        """This model's `models.int8.Int8Decoder` (calibrated on its own samples), kept and
        returned again while no weight has changed (storages and in-place versions)."""
        from models.int8 import Int8Decoder

        key = tuple((t.data_ptr(), t._version) for t in self.parameters())
        if self._int8_cache is None or self._int8_cache[0] != key:
            self._int8_cache = (key, Int8Decoder.of(self))
        return self._int8_cache[1]

    def forward(
        self,
        labels: Tensor | None,
        theta0: Tensor,
        *,
        steps: int | None = None,
        method: str | None = None,
        T: float | None = None,
        nonideal: NonIdeal | None = None,
    ) -> Tensor:
        """Differentiable generation from given seeds (training calls this).

        Args:
            labels: (B,) classes; −1 drops the class drive for that sample; None for all.
            theta0: (B, N + N_c) initial phases.
            steps, method, T: override the config's integration (default: as trained).
            nonideal: simulate imperfect hardware (`oscsim.NonIdeal`); None: ideal.
        """
        return self.decode(self.final_phases(labels, theta0, steps=steps, method=method, T=T, nonideal=nonideal))

    def final_phases(
        self,
        labels: Tensor | None,
        theta0: Tensor,
        *,
        steps: int | None = None,
        method: str | None = None,
        T: float | None = None,
        nonideal: NonIdeal | None = None,
        gemm_dtype: torch.dtype | None = None,
    ) -> Tensor:
        """(B, N) main phases at T as the readout reports them (what `decode` takes):
        the dynamics of `forward` without the decoder (differentiable; `gemm_dtype`, an
        opt-in bf16 coupling GEMM without autograd: `oscsim.simulate`)."""
        steps = self.config.num_steps if steps is None else steps
        method = self.config.solver if method is None else method
        T = self.config.integration_time if T is None else T
        if steps == 0:
            final = theta0
        else:
            final = simulate(
                self.params(), theta0, labels, steps=steps, T=T, method=method, nonideal=nonideal,
                gemm_dtype=gemm_dtype, links=self.dynamics.links,
            ).theta
        return final[:, : self.config.n]

    @torch.inference_mode()
    def generate(
        self,
        labels: Tensor,
        theta0: Tensor | None = None,
        seed: int | None = None,
        *,
        steps: int | None = None,
        method: str | None = None,
        T: float | None = None,
        nonideal: NonIdeal | None = None,
        return_phases: bool = False,
        gemm_dtype: torch.dtype | None = None,
        decoder: str = "float",
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Images (B, C, H, W) in [−1, 1] for class `labels` (B,); with `return_phases`,
        (images, the (B, N) main phases at T they were decoded from).

        `theta0` (B, N + N_c) gives the seed phases (main then conditioning, as in the
        release); otherwise they are drawn from `seed` (a fresh random seed if None).
        `nonideal` runs the oscillators on imperfect hardware (its own seeds). `gemm_dtype`
        torch.bfloat16: the opt-in bf16 coupling GEMM (`oscsim.simulate`; never the default).
        `decoder` "int8": the int8 decoder a chip's digital MAC array runs (`models.int8`;
        CPU), "float" (default) the float one.
        """
        from models.int8 import check_decoder

        check_decoder(decoder)  # before the dynamics run
        labels = torch.as_tensor(labels, dtype=torch.int64, device=self.dynamics.K.device).reshape(-1)
        if theta0 is None:
            seed = secrets.randbits(63) if seed is None else seed
            generator = torch.Generator(device=self.dynamics.K.device).manual_seed(seed)
            theta0 = self.sample_theta0(labels.shape[0], generator=generator)
        was_training = self.training
        self.eval()
        try:
            phases = self.final_phases(labels, theta0, steps=steps, method=method, T=T, nonideal=nonideal,
                                       gemm_dtype=gemm_dtype)
            images = self.decode(phases, decoder=decoder)
            return (images, phases) if return_phases else images
        finally:
            self.train(was_training)
