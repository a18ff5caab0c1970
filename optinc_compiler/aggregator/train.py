r"""Hardware-aware training of the aggregator ONN (OptINC, arXiv 2603.28290, sec. IV).

The phases and attenuator phases are trained directly (no free matrices decomposed
afterwards), together with the electronic gains and biases. Every step sees the network
as the chip would run it: heater phases quantised to the DAC (straight-through gradient)
and Gaussian phase noise drawn afresh. The loss is a margin-shifted squared hinge on the
output intensities, ``mean(relu(margin - (2 t - 1) (I - threshold))^2)``, so a correct
output must also clear the threshold by ``margin``. ``restarts`` independent
initialisations train together in one ``vmap``; the best is picked by exact accuracy,
then accuracy under noise, then its smallest margin. Everything is seeded.

Training for the traffic the chip will see (optional, all off by default):

* ``preprocessing_noise``: the preprocessing stage's heaters get the same phase noise as
  the ONN's. Its noisy intensities come from a bank of seeded draws of the compiled
  preprocessing layer (:func:`preprocessing_bank`), each reduced input represented by a
  random raw input, so the ONN sees the input errors the chip's optics make (they grow
  with the number of channels that are on, unlike ``input_noise_levels``).
* ``output_code``: ``gray`` trains the output bits of the Gray code of the average
  (:mod:`~optinc_compiler.aggregator.encoding`), so that an input error across a decision
  boundary costs one level of the average.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optinc_compiler.aggregator import model
from optinc_compiler.aggregator.encoding import (
    DETECTION_THRESHOLD,
    MAX_SEED,
    OUTPUT_CODES,
    ReducedDataset,
    output_bits,
    raw_channels,
    reduced_dataset,
)
from optinc_compiler.errors import InputError
from optinc_compiler.limits import DAC_BITS_RANGE

log = logging.getLogger("optinc")

#: Limits of the training options (each is stated in its error): restarts train at
#: once in one vmap; 2,000 steps take ~30 s at N=4, b=4, so 100,000 take hours.
MAX_RESTARTS = 256
MAX_STEPS = 100_000
#: Phase noise (rad, standard deviation): beyond pi every phase is random.
MAX_NOISE_RAD = float(np.pi)
#: Intensity margin to the threshold: output intensities lie in [0, 1].
MAX_MARGIN = 1.0
#: Input noise, in level spacings of the preprocessing intensities.
MAX_INPUT_NOISE_LEVELS = 100.0


@dataclass(frozen=True)
class TrainOptions:
    """Training settings.

    Attributes:
        restarts: independent initialisations trained together (vmap).
        steps: Adam steps.
        learning_rate: Adam step size (cosine decay to 1% over the steps).
        seed: seeds initialisation and noise draws.
        margin: required distance of an output intensity from the threshold.
        noise_rad: standard deviation of the phase noise injected per step.
        dac_bits: phase DAC depth in the loop (None: unquantised).
        input_noise_levels: standard deviation of the noise added to the preprocessing
            intensities, in units of their level spacing (what an imperfect preprocessing
            stage does to the ONN's input).
        encoder_init: ``random`` or ``bits`` (:func:`model.encoder_log_gain`).
        log_every: steps between progress lines on stderr.
        preprocessing_noise: also draw phase noise (``noise_rad``) on the preprocessing
            stage's heaters in the loop (:func:`preprocessing_bank`).
        output_code: ``binary`` or ``gray`` output bits (:mod:`~optinc_compiler.aggregator.encoding`).
        phase_gain_steps: scale Adam's steps on the encoder log-gains by ``1 / g`` (the
            gain, at least 1), so a step moves a feature's phase at full-scale intensity by
            about the learning rate in rad instead of its gain by that fraction: a feature
            with ``g = 400`` (N=4, b=8 LSB) otherwise moves ~8 rad per step.
    """

    restarts: int = 4
    steps: int = 2000
    learning_rate: float = 0.02
    seed: int = 0
    margin: float = 0.15
    noise_rad: float = 0.01
    dac_bits: int | None = 12
    input_noise_levels: float = 0.4
    encoder_init: str = "bits"
    log_every: int = 250
    preprocessing_noise: bool = False
    output_code: str = "binary"
    phase_gain_steps: bool = False

    def __post_init__(self) -> None:
        for name, top in (("restarts", MAX_RESTARTS), ("steps", MAX_STEPS), ("log_every", MAX_STEPS)):
            if not 1 <= getattr(self, name) <= top:
                raise InputError(f"{name} = {getattr(self, name)} is not allowed; use 1 <= {name} <= {top:,}")
        if not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"seed = {self.seed} is not allowed; use 0 <= seed <= {MAX_SEED}")
        if not 0 < self.learning_rate <= 1:
            raise InputError(f"learning rate {self.learning_rate} is not allowed; use 0 < rate <= 1")
        if not 0 <= self.margin <= MAX_MARGIN:
            raise InputError(f"margin {self.margin} is not allowed; use 0 <= margin <= {MAX_MARGIN:g}")
        if not 0 <= self.noise_rad <= MAX_NOISE_RAD:
            raise InputError(
                f"phase noise {self.noise_rad} rad is not allowed; use 0 .. {MAX_NOISE_RAD:.4f} (pi)"
            )
        if self.output_code not in OUTPUT_CODES:
            raise InputError(f"unknown output code {self.output_code!r}; allowed: {', '.join(OUTPUT_CODES)}")
        if not 0 <= self.input_noise_levels <= MAX_INPUT_NOISE_LEVELS:
            raise InputError(
                f"input noise {self.input_noise_levels} is not allowed; use 0 .. {MAX_INPUT_NOISE_LEVELS:g}"
            )
        low, high = DAC_BITS_RANGE
        if self.dac_bits is not None and not low <= self.dac_bits <= high:
            raise InputError(f"DAC bits {self.dac_bits} is not allowed; use {low} .. {high}")
        if self.encoder_init not in model.ENCODER_INITS:
            raise InputError(
                f"unknown encoder init {self.encoder_init!r}; allowed: {', '.join(model.ENCODER_INITS)}"
            )
        if self.steps % self.log_every:
            raise InputError(f"steps = {self.steps} is not allowed; use a multiple of {self.log_every}")


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The chosen network and how all restarts did.

    Attributes:
        arch: the architecture.
        params: parameters of the chosen restart (numpy arrays, the model's pytree).
        accuracy: (R,) exact bit accuracy of each restart on the reduced dataset.
        noisy_accuracy: (R,) mean bit accuracy under the training noise (32 draws).
        min_margin: (R,) smallest signed distance to the threshold (negative: an error).
        chosen: index of the chosen restart.
        seconds: wall time of training.
    """

    arch: model.Architecture
    params: dict[str, Any]
    accuracy: np.ndarray
    noisy_accuracy: np.ndarray
    min_margin: np.ndarray
    chosen: int
    seconds: float


def train(arch: model.Architecture, options: TrainOptions) -> TrainResult:
    """Train ``options.restarts`` networks of ``arch`` at once and return the best."""
    with jax.enable_x64(True):
        return _train(arch, options)


def _train(arch: model.Architecture, options: TrainOptions) -> TrainResult:
    if options.encoder_init == "code" and arch.preprocessing != "sum":
        raise InputError(f"encoder init 'code' needs the 'sum' preprocessing, not {arch.preprocessing!r}")
    data = reduced_dataset(arch.spec, arch.preprocessing)
    x = jnp.asarray(data.intensities)
    bits = output_bits(data.targets, bits=arch.spec.bits, output_code=options.output_code)
    sign = jnp.asarray(2.0 * bits - 1.0)
    bank = jnp.asarray(
        preprocessing_bank(data, noise_rad=options.noise_rad, dac_bits=options.dac_bits, seed=options.seed)
        if options.preprocessing_noise
        else data.intensities[None]
    )
    key = jax.random.PRNGKey(options.seed)
    key, init_key = jax.random.split(key)
    params, state = _init(arch, options, init_key)
    start = time.perf_counter()
    done = 0
    while done < options.steps:  # steps is a multiple of log_every (TrainOptions)
        params, state, key, loss, acc = _chunk(arch, options, params, state, key, x, sign, bank)
        done += options.log_every
        log.info(
            "step %d/%d  loss %.4g  best accuracy %.2f%%  restarts at 100%%: %d/%d",
            done, options.steps, float(loss) / options.restarts,
            100 * float(acc.max()), int((acc == 1.0).sum()), options.restarts,
        )  # fmt: skip
    seconds = time.perf_counter() - start
    scores = _scores(arch, options, params, key, x, sign, bank)
    accuracy, noisy, margin = (np.asarray(v) for v in scores)
    chosen = int(np.lexsort((margin, noisy, accuracy))[-1])
    return TrainResult(
        arch=arch,
        params=jax.tree.map(lambda v: np.asarray(v[chosen]), params),
        accuracy=accuracy,
        noisy_accuracy=noisy,
        min_margin=margin,
        chosen=chosen,
        seconds=seconds,
    )


def preprocessing_bank(
    data: ReducedDataset, *, noise_rad: float, dac_bits: int | None, seed: int, draws: int = 512
) -> np.ndarray:
    """(draws, S, ports) photodiode intensities of the compiled preprocessing layer with
    quantised, noisy heaters (as :func:`~optinc_compiler.aggregator.evaluate.noisy_matrix`);
    in each draw every reduced input is one random raw input that maps to it."""
    from optinc_compiler.aggregator import evaluate, export  # lazy: numpy-only modules

    rng = np.random.default_rng([seed, 1])
    layer = export.preprocessing_layer(data.spec, data.preprocessing)
    power = (
        np.abs(evaluate.noisy_matrix(layer, rng, draws=draws, noise_rad=noise_rad, dac_bits=dac_bits)) ** 2
    )
    codes = random_raw_codes(data, rng, draws)  # (draws, S, N)
    channels = raw_channels(codes.reshape(-1, data.spec.servers), bits=data.spec.bits)
    channels = channels.reshape(draws, data.size, -1)
    return np.asarray(np.einsum("dpc,dsc->dsp", power, channels), dtype=np.float64)


def random_raw_codes(data: ReducedDataset, rng: np.random.Generator, draws: int) -> np.ndarray:
    """(draws, S, N) raw codes, each row a random raw input of its reduced input: the sum
    split over the servers in a random order (``sum``), or bit k set on a random ``c_k``
    servers (``bitwise``)."""
    spec = data.spec
    n, top = spec.servers, spec.max_code
    if data.preprocessing == "sum":
        codes = np.zeros((draws, data.size, n), dtype=np.int64)
        rest = np.broadcast_to(data.sums, (draws, data.size)).copy()
        for i in range(n):
            low = np.maximum(0, rest - (n - 1 - i) * top)
            high = np.minimum(top, rest)
            codes[..., i] = low + np.floor(rng.random(rest.shape) * (high - low + 1)).astype(np.int64)
            rest = rest - codes[..., i]
        order = np.argsort(rng.random((draws, data.size, n)), axis=-1)
        return np.take_along_axis(codes, order, axis=-1)
    counts = np.rint(data.intensities * n).astype(np.int64)  # (S, b)
    ranks = np.argsort(rng.random((draws, data.size, spec.bits, n)), axis=-1)  # random server order per bit
    on = ranks < counts[None, :, :, None]  # (draws, S, b, N)
    return np.asarray((on * (2 ** np.arange(spec.bits))[:, None]).sum(axis=2), dtype=np.int64)


def _optimiser(options: TrainOptions) -> optax.GradientTransformation:
    adam = optax.adam(optax.cosine_decay_schedule(options.learning_rate, options.steps, alpha=0.01))
    if not options.phase_gain_steps:
        return adam
    return optax.chain(adam, _scale_gain_steps())


def _scale_gain_steps() -> optax.GradientTransformation:
    """Divide the updates of ``encoder.log_gain`` by ``max(g, 1)`` (TrainOptions)."""

    def update(updates: Any, state: optax.EmptyState, params: Any = None) -> tuple:
        if params is None:
            raise ValueError("phase_gain_steps needs the parameters")
        scale = 1.0 / jnp.maximum(jnp.exp(params["encoder"]["log_gain"]), 1.0)
        encoder = {**updates["encoder"], "log_gain": updates["encoder"]["log_gain"] * scale}
        return {**updates, "encoder": encoder}, state

    return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _init(arch: model.Architecture, options: TrainOptions, key: jax.Array) -> tuple:
    keys = jax.random.split(key, options.restarts)
    params = jax.vmap(lambda k: model.init_params(arch, k, options.encoder_init, options.output_code))(keys)
    return params, _optimiser(options).init(params)


def _signed(arch: model.Architecture, params: model.Params, x: jax.Array, sign: jax.Array) -> jax.Array:
    """(S, b) signed distances to the threshold of one network."""
    return sign * (model.forward(arch, params, x) - DETECTION_THRESHOLD)


def _noisy_signed(
    arch: model.Architecture,
    options: TrainOptions,
    p: model.Params,
    k: jax.Array,
    bank: jax.Array,
    sign: jax.Array,
) -> jax.Array:
    """Signed distances with noisy heaters, one preprocessing draw from ``bank`` and
    additive input noise."""
    k_phase, k_input = jax.random.split(k)  # as before the bank: same streams without it
    noisy = model.perturb(p, k_phase, noise_rad=options.noise_rad, dac_bits=options.dac_bits)
    x = bank[jax.random.randint(jax.random.fold_in(k, 1), (), 0, bank.shape[0])]
    spacing = 1.0 / (arch.spec.max_sum if arch.preprocessing == "sum" else arch.spec.servers)
    x = x + options.input_noise_levels * spacing * jax.random.normal(k_input, x.shape, dtype=x.dtype)
    return _signed(arch, noisy, x, sign)


def _exact(signed: jax.Array) -> jax.Array:
    """Fraction of inputs with every bit right."""
    return jnp.mean(jnp.all(signed > 0, axis=-1), axis=-1, dtype=jnp.float64)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _chunk(
    arch: model.Architecture,
    options: TrainOptions,
    params: model.Params,
    state: optax.OptState,
    key: jax.Array,
    x: jax.Array,
    sign: jax.Array,
    bank: jax.Array,
) -> tuple:
    """``log_every`` Adam steps of all restarts; returns the last loss and accuracies."""
    optimiser = _optimiser(options)

    def loss_all(p: model.Params, k: jax.Array) -> jax.Array:
        def loss_one(pp: model.Params, kk: jax.Array) -> jax.Array:
            signed = _noisy_signed(arch, options, pp, kk, bank, sign)
            return jnp.mean(jax.nn.relu(options.margin - signed) ** 2)

        return jnp.sum(jax.vmap(loss_one)(p, jax.random.split(k, options.restarts)))

    def step(carry: tuple, _: None) -> tuple:
        p, s, k = carry
        k, sub = jax.random.split(k)
        loss, grads = jax.value_and_grad(loss_all)(p, sub)
        updates, s = optimiser.update(grads, s, p)
        return (optax.apply_updates(p, updates), s, k), loss

    losses: jax.Array
    (params, state, key), losses = jax.lax.scan(step, (params, state, key), None, length=options.log_every)
    accuracy = jax.vmap(lambda p: _exact(_signed(arch, p, x, sign)))(params)
    return params, state, key, losses[-1], accuracy


@functools.partial(jax.jit, static_argnums=(0, 1))
def _scores(
    arch: model.Architecture,
    options: TrainOptions,
    params: model.Params,
    key: jax.Array,
    x: jax.Array,
    sign: jax.Array,
    bank: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per restart: exact accuracy, mean accuracy over 32 noise draws, smallest margin."""
    signed = jax.vmap(lambda p: _signed(arch, p, x, sign))(params)

    def noisy(k: jax.Array) -> jax.Array:
        keys = jax.random.split(k, options.restarts)
        return jax.vmap(lambda p, kk: _exact(_noisy_signed(arch, options, p, kk, bank, sign)))(params, keys)

    noisy_accuracy = jnp.mean(jax.vmap(noisy)(jax.random.split(key, 32)), axis=0)
    return _exact(signed), noisy_accuracy, jnp.min(signed, axis=(1, 2))
