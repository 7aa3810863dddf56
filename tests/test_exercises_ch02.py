"""Chapter 2's exercises: the reference and an independent correct version pass, every wrong one fails."""


import numpy as np
import pytest
import torch

from tests.wrong_versions.ch02 import WRONG_VERSIONS
from wmlib.exercises import run_tests


def _independent_reparameterize(mu, logvar, eps):
    # Written without looking at wmlib: sigma from the log-variance, then shift and scale.
    sigma = (logvar / 2).exp()
    return eps * sigma + mu


def _independent_kl(mu, logvar):
    # Per dimension: (sigma^2 + mu^2 - 1 - log sigma^2) / 2, summed over the latent axis.
    return ((logvar.exp() + mu * mu - 1.0 - logvar) / 2).sum(dim=1)


def _independent_vae_loss(x_hat, x, mu, logvar, kl_tolerance):
    batch, z_dim = mu.shape
    rec = torch.nn.functional.mse_loss(x_hat, x, reduction="sum") / batch
    kl = _independent_kl(mu, logvar)
    kl = torch.maximum(kl, torch.full_like(kl, kl_tolerance * z_dim))
    return rec + kl.mean()


def _independent_encode_for_memory(vae, frames, eps=None):
    # Written without looking at wmlib: NumPy does the layout and scaling, V runs in inference mode.
    x = torch.tensor(np.moveaxis(frames, -1, 1) / 255.0, dtype=torch.float32)
    with torch.inference_mode():
        mu, logvar = vae.encode(x)
        z = mu if eps is None else torch.addcmul(mu, (logvar / 2).exp(), eps)
    return z.clone()


@pytest.mark.parametrize("exercise_id, fn", [
    ("ch02.reparameterize", _independent_reparameterize),
    ("ch02.kl_divergence", _independent_kl),
    ("ch02.vae_loss", _independent_vae_loss),
    ("ch02.encode_for_memory", _independent_encode_for_memory),
])
def test_independent_correct_version_passes(exercise_id, fn):
    result = run_tests(exercise_id, fn)
    assert result.passed, result.failures


def test_results_are_deterministic():
    fn = WRONG_VERSIONS["ch02.vae_loss"]["tolerance on the batch mean"]
    assert run_tests("ch02.vae_loss", fn).failures == run_tests("ch02.vae_loss", fn).failures

