"""Chapter 3 exercises: the MDN loss, sampling with a temperature, teacher-forcing pairs, and one step
of M's imagination.

Introduced in: course/03_memory.ipynb
"""

from __future__ import annotations

import functools
import math

import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal

from wmlib.exercises._asserts import as_scalar, as_tensor, assert_close
from wmlib.exercises._core import register
from wmlib.mdnrnn import mdn_nll, mdn_sample, teacher_forcing_pairs


def _mixture(seed: int, shape: tuple[int, ...], K: int = 5, spread: float = 1.0):
    """Random normalised mixture parameters (shape + (K,)) and a target (shape)."""
    g = torch.Generator().manual_seed(seed)
    log_pi = torch.log_softmax(torch.randn(*shape, K, generator=g) * 2, dim=-1)
    mu = torch.randn(*shape, K, generator=g) * spread
    log_sigma = torch.randn(*shape, K, generator=g) * 0.5 - 0.3
    target = torch.randn(*shape, generator=g) * spread
    return log_pi, mu, log_sigma, target


def _torch_nll(log_pi, mu, log_sigma, target) -> torch.Tensor:
    """-log p(target) by torch.distributions, averaged over positions (the ground truth)."""
    components = Normal(mu.double(), log_sigma.double().exp())
    mix = MixtureSameFamily(Categorical(logits=log_pi.double()), components)
    return -mix.log_prob(target.double()).mean()


def _one_thread(test):
    """Run a test on one CPU thread: on a busy machine, threads contending over tensors of 60,000
    numbers make each operation ten times slower than doing it alone."""

    @functools.wraps(test)
    def run(fn):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return test(fn)
        finally:
            torch.set_num_threads(threads)

    return run


def _scalar(value, what: str) -> torch.Tensor:
    return as_scalar(value, what, "take the mean over every position")

def _nll_hand_example(fn):
    # Two Gaussians, pi = (0.25, 0.75), mu = (0, 2), sigma = (1, 0.5), target 1.
    log_pi = torch.log(torch.tensor([0.25, 0.75]))
    mu, log_sigma = torch.tensor([0.0, 2.0]), torch.log(torch.tensor([1.0, 0.5]))
    root = math.sqrt(2 * math.pi)
    density = 0.25 * math.exp(-0.5) / root + 0.75 * math.exp(-2.0) / (0.5 * root)
    got = _scalar(fn(log_pi, mu, log_sigma, torch.tensor(1.0)), "mdn_nll on one position")
    assert_close(got, torch.tensor(-math.log(density)),
                 "-log(0.25 N(1; 0, 1) + 0.75 N(1; 2, 0.5)) (one position, K = 2)", rtol=1e-5)


def _nll_one_gaussian(fn):
    log_pi, mu, log_sigma, target = _mixture(1, (6, 4), K=1)
    expected = -Normal(mu[..., 0], log_sigma[..., 0].exp()).log_prob(target).mean()
    got = _scalar(fn(log_pi, mu, log_sigma, target), "mdn_nll with K = 1")
    assert_close(got, expected, "mdn_nll with a single Gaussian (K = 1), which must equal -Normal.log_prob "
                 "(check the -log sigma and -0.5 log(2 pi) terms)", rtol=1e-5)


def _nll_vs_torch(fn):
    for seed, shape in ((2, (8, 3)), (3, (2, 5, 4)), (4, (30,))):
        log_pi, mu, log_sigma, target = _mixture(seed, shape)
        got = _scalar(fn(log_pi, mu, log_sigma, target), f"mdn_nll on shape {shape + (5,)}")
        assert_close(got, _torch_nll(log_pi, mu, log_sigma, target),
                     f"mdn_nll on random inputs of shape {shape + (5,)}, compared with "
                     "torch.distributions.MixtureSameFamily", rtol=1e-5)


def _nll_mean_not_sum(fn):
    log_pi, mu, log_sigma, target = _mixture(5, (3,))
    one = _scalar(fn(log_pi, mu, log_sigma, target), "mdn_nll")
    rep = lambda x: x.repeat(7, *([1] * (x.dim()))) if x.dim() else x.repeat(7)  # noqa: E731
    many = _scalar(fn(rep(log_pi), rep(mu), rep(log_sigma), rep(target)), "mdn_nll")
    assert_close(many, one, "mdn_nll of the same positions repeated 7 times (it should not change: take the "
                 "mean over positions, not the sum)", rtol=1e-5)


def _nll_far_target(fn):
    # Every component is 200 sigmas away: p is about e^-20000, 0 in floating point, yet log p is finite.
    log_pi, mu, log_sigma, target = _mixture(6, (4, 3), K=3)
    target = target + 200.0
    got = _scalar(fn(log_pi, mu, log_sigma, target), "mdn_nll far from every component")
    assert_close(got, _torch_nll(log_pi, mu, log_sigma, target),
                 "mdn_nll when the target is 200 sigmas from every component (compute log N directly and "
                 "combine the components with torch.logsumexp: exp then log underflows to log(0) = -inf)",
                 rtol=1e-5)


def _nll_extreme_sigmas(fn):
    log_pi, mu, _, target = _mixture(7, (5, 2), K=4)
    log_sigma = torch.tensor([-9.0, -4.0, 3.0, 7.0]).expand(5, 2, 4)
    got = _scalar(fn(log_pi, mu, log_sigma, target), "mdn_nll with extreme sigmas")
    assert_close(got, _torch_nll(log_pi, mu, log_sigma, target),
                 "mdn_nll with sigmas from e^-9 to e^7 (numerically stable? use logsumexp)", rtol=1e-5)


def _nll_gradient(fn):
    log_pi, mu, log_sigma, target = _mixture(8, (4, 3), K=3)
    target = target + 100.0
    params = [p.clone().requires_grad_(True) for p in (log_pi, mu, log_sigma)]
    got = as_tensor(fn(*params, target), "mdn_nll")
    if not got.requires_grad:
        raise AssertionError("the loss does not carry gradients: keep it a torch computation on the inputs "
                             "(no .item(), .detach(), NumPy or torch.tensor(...) around the result)")
    got.sum().backward()
    for name, p in zip(("log_pi", "mu", "log_sigma"), params, strict=True):
        if p.grad is None or not torch.isfinite(p.grad).all():
            raise AssertionError(f"the gradient with respect to {name} is missing or not finite when the "
                                 "target is far from every component (use torch.logsumexp, "
                                 "not log(sum(exp(...))))")


register(
    "ch03.mdn_nll",
    "(log_pi (..., K), mu (..., K), log_sigma (..., K), target (...)) -> scalar",
    mdn_nll,
    [
        ("worked example by hand", _nll_hand_example),
        ("one Gaussian (K = 1)", _nll_one_gaussian),
        ("matches torch.distributions", _nll_vs_torch),
        ("mean over positions", _nll_mean_not_sum),
        ("target far from every component", _nll_far_target),
        ("tiny and huge sigmas", _nll_extreme_sigmas),
        ("finite gradients", _nll_gradient),
    ],
)


# --- tests for ch03.mdn_sample ----------------------------------------------------------------

_N = 20_000  # positions per statistical test: standard errors of about 1 %


def _closed_form(log_pi, mu, log_sigma, temperature):
    """Mean, variance and fourth central moment of the tempered mixture, per position (formulas).

    With weights w = softmax(log_pi / tau) and component variances v = sigma^2 * tau:
    mean M = sum w mu, variance = sum w (v + mu^2) - M^2,
    fourth central moment = sum w ((mu - M)^4 + 6 (mu - M)^2 v + 3 v^2).
    """
    w = torch.softmax(log_pi.double() / temperature, dim=-1)
    v = (2 * log_sigma.double()).exp() * temperature
    mu = mu.double()
    mean = (w * mu).sum(-1)
    var = (w * (v + mu**2)).sum(-1) - mean**2
    d = mu - mean.unsqueeze(-1)
    m4 = (w * (d**4 + 6 * d**2 * v + 3 * v**2)).sum(-1)
    return mean, var, m4


def _stat_params():
    """Three latent dims, each its own mixture: forks, same centres with different widths, and a mix."""
    log_pi = torch.log(torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]))
    mu = torch.tensor([[-2.0, 0.0, 3.0], [1.0, 1.0, 1.0], [0.5, -1.0, 2.0]])
    log_sigma = torch.log(torch.tensor([[0.3, 0.5, 0.2], [0.2, 1.0, 2.0], [1.5, 0.4, 0.7]]))
    return tuple(x.expand(_N, 3, 3) for x in (log_pi, mu, log_sigma))


def _sample(fn, log_pi, mu, log_sigma, temperature, seed):
    g = torch.Generator().manual_seed(seed)
    out = as_tensor(fn(log_pi, mu, log_sigma, temperature, g), "the sample").detach().double()
    if tuple(out.shape) != tuple(mu.shape[:-1]):
        raise AssertionError(f"the sample should have one value per position, shape {tuple(mu.shape[:-1])} "
                             f"for parameters of shape {tuple(mu.shape)}; got {tuple(out.shape)}")
    if not torch.isfinite(out).all():
        raise AssertionError("the sample contains NaN or inf")
    return out


def _sample_shape(fn):
    for shape in ((4,), (2, 3), (2, 3, 5)):
        log_pi, mu, log_sigma, _ = _mixture(20, shape, K=4)
        _sample(fn, log_pi, mu, log_sigma, 1.0, 0)


def _sample_sharp(fn):
    # One component carries all the weight and is 1e-9 wide: every sample is its mean.
    log_pi = torch.log_softmax(torch.tensor([[0.0, -1e4, -1e4], [-1e4, -1e4, 0.0]]), dim=-1)
    mu = torch.tensor([[1.5, -3.0, 7.0], [2.0, 4.0, -0.25]])
    log_sigma = torch.full((2, 3), math.log(1e-9))
    for tau in (1.0, 1.5):
        got = _sample(fn, log_pi, mu, log_sigma, tau, 1)
        assert_close(got, torch.tensor([1.5, -0.25], dtype=torch.float64),
                     f"the sample when one component has all the weight and no width (temperature {tau})",
                     rtol=1e-6, atol=1e-6)


def _sample_weights(fn):
    # Well separated, very narrow components: which one was picked can be read off the sample.
    log_pi = torch.log(torch.tensor([0.1, 0.3, 0.6])).expand(_N, 3)
    mu = torch.tensor([-10.0, 0.0, 10.0]).expand(_N, 3)
    log_sigma = torch.full((_N, 3), math.log(1e-3))
    for tau in (1.0, 0.5, 2.0):
        got = _sample(fn, log_pi, mu, log_sigma, tau, 2)
        freq = torch.stack([(got - m).abs().lt(1.0).double().mean() for m in (-10.0, 0.0, 10.0)])
        expected = torch.softmax(log_pi[0].double() / tau, dim=-1)
        if (freq - expected).abs().max() > 0.02:
            raise AssertionError(
                f"at temperature {tau} the components were picked with frequencies "
                f"{[round(float(f), 3) for f in freq]}, expected softmax(log_pi / temperature) = "
                f"{[round(float(e), 3) for e in expected]}")


def _sample_widths(fn):
    # One component (K = 1): the sample is N(mu, sigma^2 * temperature), so its std is sigma * sqrt(tau).
    log_pi = torch.zeros(_N, 1)
    mu = torch.full((_N, 1), 2.0)
    log_sigma = torch.full((_N, 1), math.log(0.5))
    for tau in (1.0, 0.25, 4.0):
        got = _sample(fn, log_pi, mu, log_sigma, tau, 3)
        std, expected = float(got.std()), 0.5 * math.sqrt(tau)
        if abs(std / expected - 1) > 0.05 or abs(float(got.mean()) - 2.0) > 0.05:
            raise AssertionError(
                f"with one Gaussian (mu 2, sigma 0.5) at temperature {tau} your samples have mean "
                f"{float(got.mean()):.3f} and std {std:.3f}; expected mean 2 and std "
                f"sigma * sqrt(temperature) = {expected:.3f}")


def _sample_moments(tau):
    def test(fn):
        log_pi, mu, log_sigma = _stat_params()
        got = _sample(fn, log_pi, mu, log_sigma, tau, 4)
        mean, var, m4 = _closed_form(log_pi[0], mu[0], log_sigma[0], tau)
        for j in range(3):
            m, v = float(got[:, j].mean()), float(got[:, j].var())
            # Five standard errors of the sample mean and of the sample variance: a correct sampler
            # fails this about once in a million runs, whatever random numbers it draws.
            se_mean, se_var = math.sqrt(var[j] / _N), math.sqrt((m4[j] - var[j] ** 2) / _N)
            if abs(m - mean[j]) > 5 * se_mean or abs(v - var[j]) > 5 * se_var:
                raise AssertionError(
                    f"at temperature {tau}, latent dim {j}: your samples have mean {m:.3f} and variance "
                    f"{v:.3f}; "
                    f"the tempered mixture has mean {float(mean[j]):.3f} and variance {float(var[j]):.3f} "
                    "(weights softmax(log_pi / tau), each Gaussian widened to sigma * sqrt(tau))")

    return test


def _sample_generator(fn):
    log_pi, mu, log_sigma, _ = _mixture(21, (50, 4), K=3)
    first = _sample(fn, log_pi, mu, log_sigma, 1.0, 123)
    second = _sample(fn, log_pi, mu, log_sigma, 1.0, 123)
    if not torch.equal(first, second):
        raise AssertionError("two calls with generators seeded alike gave different samples: draw all the "
                             "randomness from the `generator` argument (torch.multinomial(..., generator=g), "
                             "torch.randn(..., generator=g))")
    other = _sample(fn, log_pi, mu, log_sigma, 1.0, 124)
    if torch.equal(first, other):
        raise AssertionError("generators with different seeds gave the same samples: is the sample random?")


def _sample_independent(fn):
    # Two latent dims with identical mixtures must still get independent noise.
    log_pi = torch.log(torch.tensor([0.5, 0.5])).expand(_N, 2, 2)
    mu = torch.tensor([0.0, 0.0]).expand(_N, 2, 2)
    log_sigma = torch.zeros(_N, 2, 2)
    got = _sample(fn, log_pi, mu, log_sigma, 1.0, 5)
    r = float(torch.corrcoef(got.T)[0, 1])
    if abs(r) > 0.05:
        raise AssertionError(f"samples of two different latent dims are correlated (r = {r:.2f}): draw a "
                             "separate eps ~ N(0, 1) (and a separate component) for every position")


register(
    "ch03.mdn_sample",
    "(log_pi (..., K), mu (..., K), log_sigma (..., K), temperature: float, "
    "generator: torch.Generator) -> (...)",
    mdn_sample,
    [
        ("one value per position", _one_thread(_sample_shape)),
        ("a sure, sharp component gives its mean", _one_thread(_sample_sharp)),
        ("component weights softmax(log_pi / temperature)", _one_thread(_sample_weights)),
        ("widths sigma * sqrt(temperature)", _one_thread(_sample_widths)),
        ("mean and variance at temperature 1", _one_thread(_sample_moments(1.0))),
        ("mean and variance at temperature 0.5", _one_thread(_sample_moments(0.5))),
        ("mean and variance at temperature 1.5", _one_thread(_sample_moments(1.5))),
        ("uses the generator", _one_thread(_sample_generator)),
        ("independent noise per position", _one_thread(_sample_independent)),
    ],
)


# --- tests for ch03.teacher_forcing_pairs -----------------------------------------------------


def _pairs(fn, z, a):
    got = fn(z, a)
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise AssertionError(f"return a pair (inputs, targets), got {type(got).__name__}")
    inputs = as_tensor(got[0], "inputs")
    targets = as_tensor(got[1], "targets")
    B, T, Z = z.shape
    A = a.shape[-1]
    if tuple(targets.shape) == (B, T - 1, Z + A) and tuple(inputs.shape) == (B, T - 1, Z):
        raise AssertionError("you returned (targets, inputs): return (inputs, targets)")
    if tuple(inputs.shape) != (B, T - 1, Z + A):
        raise AssertionError(f"inputs should have shape (B, T-1, Z+A) = {(B, T - 1, Z + A)} for z "
                             f"{tuple(z.shape)} and a {tuple(a.shape)}, got {tuple(inputs.shape)}")
    if tuple(targets.shape) != (B, T - 1, Z):
        raise AssertionError(f"targets should have shape (B, T-1, Z) = {(B, T - 1, Z)}, "
                             f"got {tuple(targets.shape)}")
    return inputs, targets


def _diagnose(inputs, targets, z, a):
    """Name the usual mistake when the pairs are wrong."""
    if torch.equal(targets, z[:, :-1]):
        raise AssertionError("targets are the current latents z_t: M must predict the NEXT one, "
                             "z_{t+1} = z[:, 1:]")
    head = inputs[..., : a.shape[-1]]
    if torch.equal(head, a[:, :-1]) or torch.equal(head, a[:, 1:]):
        raise AssertionError("inputs start with the action: concatenate [z_t, a_t], latent first")
    if torch.equal(inputs[..., z.shape[-1]:], a[:, 1:]):
        raise AssertionError("the action is paired with the wrong step: z_t goes with a_t (the action taken "
                             "after seeing z_t), i.e. a[:, :-1]")
    if torch.equal(inputs[..., : z.shape[-1]], z[:, 1:]):
        raise AssertionError("inputs hold z_{t+1}: the input is the current latent z_t = z[:, :-1]")


def _tf_hand_example(fn):
    z = torch.tensor([[[0.0, 0.1], [1.0, 1.1], [2.0, 2.1]]])  # B=1, T=3, Z=2: z_t = (t, t + 0.1)
    a = torch.tensor([[[10.0], [11.0], [12.0]]])  # a_t = 10 + t
    inputs, targets = _pairs(fn, z, a)
    _diagnose(inputs, targets, z, a)
    assert_close(inputs, torch.tensor([[[0.0, 0.1, 10.0], [1.0, 1.1, 11.0]]]),
                 "inputs [z_t, a_t] for z_t = (t, t+0.1), a_t = 10 + t, T = 3")
    assert_close(targets, torch.tensor([[[1.0, 1.1], [2.0, 2.1]]]), "targets z_{t+1} for the same sequence")


def _tf_random(fn):
    g = torch.Generator().manual_seed(30)
    for B, T in ((3, 7), (5, 5), (4, 2)):  # B == T catches slicing the batch axis instead of time
        z, a = torch.randn(B, T, 4, generator=g), torch.randn(B, T, 3, generator=g)
        inputs, targets = _pairs(fn, z, a)
        _diagnose(inputs, targets, z, a)
        ref_in, ref_tg = teacher_forcing_pairs(z, a)
        assert_close(inputs, ref_in, f"inputs for B = {B}, T = {T} (slice the time axis, dim 1)")
        assert_close(targets, ref_tg, f"targets for B = {B}, T = {T} (slice the time axis, dim 1)")


def _tf_unchanged(fn):
    g = torch.Generator().manual_seed(31)
    z, a = torch.randn(2, 6, 3, generator=g), torch.randn(2, 6, 2, generator=g)
    z0, a0 = z.clone(), a.clone()
    _pairs(fn, z, a)
    if not (torch.equal(z, z0) and torch.equal(a, a0)):
        raise AssertionError("your function changed z or a in place; build new tensors instead")


register(
    "ch03.teacher_forcing_pairs",
    "(z (B, T, Z), a (B, T, A)) -> (inputs (B, T-1, Z+A), targets (B, T-1, Z))",
    teacher_forcing_pairs,
    [
        ("worked example by hand", _tf_hand_example),
        ("random batches, B == T too", _tf_random),
        ("inputs left unchanged", _tf_unchanged),
    ],
)


# --- tests for ch03.imagine_step --------------------------------------------------------------
#
# One step of M's imagination, the inner step of every dream: M reads (z_t, a_t) with its memory,
# moves its memory on, and the next latent is sampled from its heads at a temperature. The checks
# use a small M (Z 3, A 2, H 16, K 3) whose heads are set by hand through the output layer's bias:
# with the weights zeroed the mixture is known exactly (statistical checks against closed forms);
# with the weights kept and the widths tiny, the sample is the mean of the one sure component, a
# number that depends on the NEW memory (exact checks).

_IZ, _IA, _IK = 3, 2, 3


def imagine_step(mdnrnn, z: torch.Tensor, action: torch.Tensor, state, temperature: float,
                 generator: torch.Generator):
    """Reference: z (B, Z), action (B,) ints, state LSTMState (B, H) -> (z_next (B, Z), new state).

    Uses M's own step (wmlib.mdnrnn.MDNRNN.step) and sampler (wmlib.mdnrnn.mdn_sample).
    """
    a = torch.nn.functional.one_hot(action.long(), mdnrnn.config.action_dim).to(z.dtype)
    out = mdnrnn.step(z, a, state)
    return mdn_sample(out.log_pi, out.mu, out.log_sigma, temperature, generator), out.state


def _head_bias(log_pi, mu, log_sigma) -> torch.Tensor:
    """The output layer's bias (Z * 3K,) that makes the heads say log_pi, mu, log_sigma (Z, K)."""
    return torch.cat([log_pi, mu, log_sigma], dim=-1).reshape(-1)


@functools.lru_cache(maxsize=4)
def _small_m(kind: str):
    """A small M: "known" has constant heads (weights zeroed); "sharp" keeps its weights, one sure
    and very narrow component per dim, so its sample is that component's mean from the new memory."""
    from wmlib.config import MDNRNNConfig
    from wmlib.mdnrnn import MDNRNN

    with torch.random.fork_rng():
        torch.manual_seed(7)
        m = MDNRNN(MDNRNNConfig(z_dim=_IZ, action_dim=_IA, hidden_size=16, num_mixtures=_IK)).eval()
    with torch.no_grad():
        if kind == "known":
            log_pi, mu, log_sigma = (x[0] for x in _stat_params_small())
            m.mdn.weight.zero_()
            m.mdn.bias.copy_(_head_bias(log_pi, mu, log_sigma))
        else:
            sure = torch.full((_IZ, _IK), -60.0)
            sure[torch.arange(_IZ), torch.tensor([1, 0, 2])] = 0.0
            m.mdn.weight.mul_(2.0)
            m.mdn.bias.copy_(_head_bias(sure, torch.zeros(_IZ, _IK), torch.full((_IZ, _IK), -25.0)))
    return m


def _stat_params_small():
    """The mixtures of _stat_params, one row per latent dim: (1, Z, K) each."""
    log_pi = torch.log(torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]))
    mu = torch.tensor([[-2.0, 0.0, 3.0], [1.0, 1.0, 1.0], [0.5, -1.0, 2.0]])
    log_sigma = torch.log(torch.tensor([[0.3, 0.5, 0.2], [0.2, 1.0, 2.0], [1.5, 0.4, 0.7]]))
    return log_pi[None], mu[None], log_sigma[None]


def _start(batch: int, seed: int):
    """z (B, Z), actions (B,) in {0, 1}, and a non-empty memory (h, c) (B, 16)."""
    from wmlib.mdnrnn import LSTMState

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, _IZ, generator=g)
    action = torch.randint(0, _IA, (batch,), generator=g)
    state = LSTMState(torch.randn(batch, 16, generator=g) * 0.5, torch.randn(batch, 16, generator=g) * 0.5)
    return z, action, state


def _imagine(fn, m, z, action, state, tau, seed):
    copies = (z.clone(), action.clone(), state[0].clone(), state[1].clone())
    out = fn(m, z, action, state, tau, torch.Generator().manual_seed(seed))
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise AssertionError(f"return a pair (z_next, state), got {type(out).__name__}")
    z_next, new_state = out
    z_next = as_tensor(z_next, "z_next")
    B, H = z.shape[0], m.config.hidden_size
    if tuple(z_next.shape) != (B, _IZ):
        raise AssertionError(f"z_next should have shape (B, Z) = {(B, _IZ)}, got {tuple(z_next.shape)}")
    if not torch.isfinite(z_next).all():
        raise AssertionError("z_next contains NaN or inf")
    if not isinstance(new_state, tuple | list) or len(new_state) != 2:
        raise AssertionError("the new state should be M's memory (h, c) (an LSTMState), got "
                             f"{type(new_state).__name__}")
    h, c = (as_tensor(x, "the new state") for x in new_state)
    if tuple(h.shape) != (B, H) or tuple(c.shape) != (B, H):
        raise AssertionError(f"the new state's h and c should each be (B, H) = {(B, H)}, got "
                             f"{tuple(h.shape)} and {tuple(c.shape)}")
    for name, before, now in zip(("z", "action", "h", "c"), copies, (z, action, *state), strict=True):
        if not torch.equal(before, now):
            raise AssertionError(f"your function changed its input {name} in place")
    return z_next.detach().double(), (h.detach(), c.detach())


def _is_step_test(fn):
    m = _small_m("sharp")
    z, action, state = _start(6, 50)
    _, (h, c) = _imagine(fn, m, z, action, state, 1.0, 0)
    a = torch.nn.functional.one_hot(action, _IA).float()
    with torch.no_grad():
        right = m.step(z, a, state).state
        if torch.equal(h, state.h) and torch.equal(c, state.c):
            raise AssertionError("the state you return is the state you were given: M's memory must move on "
                                 "(return the state that M's step returns)")
        fresh = m.step(z, a, None).state
        if torch.allclose(h, fresh.h, atol=1e-6):
            raise AssertionError("the new memory ignores the state you were given (it is the step from an "
                                 "empty memory): pass the state into M's step")
        flipped = m.step(z, torch.nn.functional.one_hot(1 - action, _IA).float(), state).state
        if torch.allclose(h, flipped.h, atol=1e-6):
            raise AssertionError("the new memory is the one for the other action: one-hot encode `action` "
                                 "as it is (action 0 -> [1, 0], action 1 -> [0, 1])")
    assert_close(h, right.h, "the new memory h (it should be what M's step returns for z, one-hot(action), "
                 "state)", rtol=1e-5, atol=1e-6)
    assert_close(c, right.c, "the new cell c", rtol=1e-5, atol=1e-6)


def _is_sharp(fn):
    # One sure component per dim, 1e-11 wide: the sample is that component's mean, read from the heads on
    # the NEW memory (the heads read h_{t+1}, which has seen z_t and a_t).
    m = _small_m("sharp")
    z, action, state = _start(6, 51)
    a = torch.nn.functional.one_hot(action, _IA).float()
    with torch.no_grad():
        out = m.step(z, a, state)
        expected = out.mu.gather(-1, out.log_pi.argmax(-1, keepdim=True)).squeeze(-1).double()
        old = m.heads(state.h)
        stale = old[1].gather(-1, old[0].argmax(-1, keepdim=True)).squeeze(-1).double()
    for tau in (1.0, 0.5, 1.5):
        got, _ = _imagine(fn, m, z, action, state, tau, 1)
        if torch.allclose(got, stale, rtol=1e-5, atol=1e-6):
            raise AssertionError("z_next comes from the heads on the OLD memory: step M first, then sample "
                                 "from the heads that read the new h")
        if torch.allclose(got, expected * tau, rtol=1e-5, atol=1e-6) and tau != 1.0:
            raise AssertionError(f"at temperature {tau} the sample is the component's mean times the "
                                 "temperature: the temperature scales the choice of component and the width, "
                                 "never the mean")
        assert_close(got, expected, f"z_next at temperature {tau} when each dim has one sure component of "
                     "width 1e-11 (it should be that component's mean, from M's heads after the step)",
                     rtol=1e-5, atol=1e-6)


def _is_moments(tau):
    def test(fn):
        m = _small_m("known")
        z, action, state = _start(1, 52)
        rep = lambda x: x.expand(_N, *x.shape[1:]).contiguous()  # noqa: E731
        got, _ = _imagine(fn, m, rep(z), rep(action), type(state)(*(rep(x) for x in state)), tau, 4)
        log_pi, mu, log_sigma = (x[0] for x in _stat_params_small())
        mean, var, m4 = _closed_form(log_pi, mu, log_sigma, tau)
        for j in range(_IZ):
            mj, vj = float(got[:, j].mean()), float(got[:, j].var())
            se_mean, se_var = math.sqrt(var[j] / _N), math.sqrt((m4[j] - var[j] ** 2) / _N)
            if abs(mj - mean[j]) > 5 * se_mean or abs(vj - var[j]) > 5 * se_var:
                raise AssertionError(
                    f"at temperature {tau}, latent dim {j}: your samples have mean {mj:.3f} and variance "
                    f"{vj:.3f}; M's tempered mixture has mean {float(mean[j]):.3f} and variance "
                    f"{float(var[j]):.3f} (weights softmax(log_pi / tau), widths sigma * sqrt(tau))")

    return test


def _is_weights(fn):
    # Narrow, far-apart components: which one was picked can be read off the sample.
    from wmlib.mdnrnn import LSTMState

    m = _small_m("known")
    log_pi = torch.log(torch.tensor([0.1, 0.3, 0.6])).expand(_IZ, _IK)
    centres = torch.tensor([-10.0, 0.0, 10.0]).expand(_IZ, _IK)
    with torch.no_grad():
        narrow = type(m)(m.config).eval()
        narrow.load_state_dict(m.state_dict())
        narrow.mdn.bias.copy_(_head_bias(log_pi, centres, torch.full((_IZ, _IK), math.log(1e-3))))
    z, action = torch.zeros(_N, _IZ), torch.zeros(_N, dtype=torch.long)
    state = LSTMState(torch.zeros(_N, 16), torch.zeros(_N, 16))
    for tau in (1.0, 0.5, 2.0):
        got, _ = _imagine(fn, narrow, z, action, state, tau, 2)
        freq = torch.stack([(got[:, 0] - c).abs().lt(1.0).double().mean() for c in (-10.0, 0.0, 10.0)])
        expected = torch.softmax(log_pi[0].double() / tau, dim=-1)
        if (freq - expected).abs().max() > 0.02:
            raise AssertionError(
                f"at temperature {tau} the components were picked with frequencies "
                f"{[round(float(f), 3) for f in freq]}, expected softmax(log_pi / temperature) = "
                f"{[round(float(e), 3) for e in expected]} (divide the log-weights by tau, then normalise them "
                "again with a softmax: exp(log_pi / tau) alone no longer sums to 1)")


def _is_generator(fn):
    m = _small_m("known")
    z, action, state = _start(64, 53)
    first, _ = _imagine(fn, m, z, action, state, 1.0, 123)
    second, _ = _imagine(fn, m, z, action, state, 1.0, 123)
    if not torch.equal(first, second):
        raise AssertionError("two calls with generators seeded alike gave different z_next: draw all the "
                             "randomness from the `generator` argument (so a dream can be replayed)")
    other, _ = _imagine(fn, m, z, action, state, 1.0, 124)
    if torch.equal(first, other):
        raise AssertionError("generators with different seeds gave the same z_next: is it sampled?")


register(
    "ch03.imagine_step",
    "(mdnrnn: MDNRNN, z (B, Z), action (B,) ints, state: LSTMState (B, H), temperature: float, "
    "generator: torch.Generator) -> (z_next (B, Z), new state)",
    imagine_step,
    [
        ("the memory moves on", _one_thread(_is_step_test)),
        ("a sure, sharp component gives its mean", _one_thread(_is_sharp)),
        ("component weights softmax(log_pi / temperature)", _one_thread(_is_weights)),
        ("mean and variance at temperature 1", _one_thread(_is_moments(1.0))),
        ("mean and variance at temperature 0.5", _one_thread(_is_moments(0.5))),
        ("mean and variance at temperature 1.5", _one_thread(_is_moments(1.5))),
        ("uses the generator", _one_thread(_is_generator)),
    ],
)
