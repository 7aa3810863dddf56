"""Plausible wrong answers to chapter 2's exercises. Each must be rejected by `check`.

WRONG_VERSIONS[exercise_id] maps a short description of the mistake to the wrong function.
"""

import torch
import torch.nn.functional as F

# --- ch02.reparameterize ----------------------------------------------------------------------


def rp_std_is_exp_logvar(mu, logvar, eps):
    return mu + torch.exp(logvar) * eps


def rp_std_is_logvar(mu, logvar, eps):
    return mu + logvar * eps


def rp_half_of_exp(mu, logvar, eps):
    return mu + 0.5 * torch.exp(logvar) * eps


def rp_exp_minus_half(mu, logvar, eps):
    return mu + torch.exp(-0.5 * logvar) * eps


def rp_ignores_eps(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def rp_no_noise(mu, logvar, eps):
    return mu.clone()


def rp_scales_mu(mu, logvar, eps):
    return mu * torch.exp(0.5 * logvar) + eps


def rp_sqrt_of_exp(mu, logvar, eps):
    return mu + torch.sqrt(torch.exp(logvar)) * eps


def rp_detached(mu, logvar, eps):
    return (mu + torch.exp(0.5 * logvar) * eps).detach()


def rp_samples_with_normal(mu, logvar, eps):
    return torch.normal(mu.detach(), torch.exp(0.5 * logvar.detach()))


def rp_in_place(mu, logvar, eps):
    return mu.add_(torch.exp(0.5 * logvar) * eps)


def rp_variance_times_eps_plus_mu_squared(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps**2


REPARAMETERIZE = {
    "std = exp(logvar)": rp_std_is_exp_logvar,
    "std = logvar": rp_std_is_logvar,
    "std = 0.5 * exp(logvar)": rp_half_of_exp,
    "std = exp(-logvar / 2)": rp_exp_minus_half,
    "draws its own noise": rp_ignores_eps,
    "returns mu (no noise)": rp_no_noise,
    "mu * std + eps": rp_scales_mu,
    "sqrt(exp(logvar)) overflows": rp_sqrt_of_exp,
    "detached from the graph": rp_detached,
    "torch.normal (no gradient)": rp_samples_with_normal,
    "changes mu in place": rp_in_place,
    "eps squared": rp_variance_times_eps_plus_mu_squared,
}


# --- ch02.kl_divergence -----------------------------------------------------------------------


def kl_no_half(mu, logvar):
    return -torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=-1)


def kl_sign_flipped(mu, logvar):
    return 0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=-1)


def kl_mean_over_z(mu, logvar):
    return -0.5 * torch.mean(1 + logvar - mu**2 - logvar.exp(), dim=-1)


def kl_scalar_mean_over_batch(mu, logvar):
    return (-0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=-1)).mean()


def kl_sum_over_everything(mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp())


def kl_sum_over_batch(mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=0)


def kl_std_instead_of_var(mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu**2 - torch.exp(0.5 * logvar), dim=-1)


def kl_mu_not_squared(mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu - logvar.exp(), dim=-1)


def kl_forgets_the_one(mu, logvar):
    return -0.5 * torch.sum(logvar - mu**2 - logvar.exp(), dim=-1)


def kl_log_of_exp(mu, logvar):
    var = torch.exp(logvar)
    return -0.5 * torch.sum(1 + torch.log(var) - mu**2 - var, dim=-1)


def kl_keepdim(mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=-1, keepdim=True)


def kl_reverse_direction(mu, logvar):
    # KL(N(0, I) || q) instead of KL(q || N(0, I))
    var = logvar.exp()
    return 0.5 * torch.sum(logvar + (1 + mu**2) / var - 1, dim=-1)


KL_DIVERGENCE = {
    "no factor 1/2": kl_no_half,
    "sign flipped": kl_sign_flipped,
    "mean over Z instead of sum": kl_mean_over_z,
    "averaged over the batch (a scalar)": kl_scalar_mean_over_batch,
    "summed over everything": kl_sum_over_everything,
    "summed over the batch (dim=0)": kl_sum_over_batch,
    "std where the variance belongs": kl_std_instead_of_var,
    "mu not squared": kl_mu_not_squared,
    "forgets the +1": kl_forgets_the_one,
    "log(exp(logvar)) underflows": kl_log_of_exp,
    "keepdim=True gives (B, 1)": kl_keepdim,
    "KL(p || q), the other direction": kl_reverse_direction,
}


# --- ch02.vae_loss ----------------------------------------------------------------------------


def _kl(mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=-1)


def _rec(x_hat, x):
    return ((x_hat - x) ** 2).flatten(1).sum(1)


def vl_mse_mean_over_pixels(x_hat, x, mu, logvar, kl_tolerance):
    kl = torch.clamp(_kl(mu, logvar), min=kl_tolerance * mu.shape[1])
    return F.mse_loss(x_hat, x) + kl.mean()


def vl_sum_over_batch(x_hat, x, mu, logvar, kl_tolerance):
    kl = torch.clamp(_kl(mu, logvar), min=kl_tolerance * mu.shape[1])
    return _rec(x_hat, x).sum() + kl.sum()


def vl_tolerance_on_batch_mean(x_hat, x, mu, logvar, kl_tolerance):
    kl = torch.clamp(_kl(mu, logvar).mean(), min=kl_tolerance * mu.shape[1])
    return _rec(x_hat, x).mean() + kl


def vl_tolerance_not_times_z(x_hat, x, mu, logvar, kl_tolerance):
    kl = torch.clamp(_kl(mu, logvar), min=kl_tolerance)
    return _rec(x_hat, x).mean() + kl.mean()


def vl_no_tolerance(x_hat, x, mu, logvar, kl_tolerance):
    return _rec(x_hat, x).mean() + _kl(mu, logvar).mean()


def vl_min_instead_of_max(x_hat, x, mu, logvar, kl_tolerance):
    kl = torch.clamp(_kl(mu, logvar), max=kl_tolerance * mu.shape[1])
    return _rec(x_hat, x).mean() + kl.mean()


def vl_binary_cross_entropy(x_hat, x, mu, logvar, kl_tolerance):
    bce = F.binary_cross_entropy(x_hat, x, reduction="none").flatten(1).sum(1)
    kl = torch.clamp(_kl(mu, logvar), min=kl_tolerance * mu.shape[1])
    return bce.mean() + kl.mean()


def vl_kl_mean_over_z(x_hat, x, mu, logvar, kl_tolerance):
    kl = -0.5 * torch.mean(1 + logvar - mu**2 - logvar.exp(), dim=-1)
    return _rec(x_hat, x).mean() + torch.clamp(kl, min=kl_tolerance * mu.shape[1]).mean()


def vl_kl_subtracted(x_hat, x, mu, logvar, kl_tolerance):
    kl = torch.clamp(_kl(mu, logvar), min=kl_tolerance * mu.shape[1])
    return _rec(x_hat, x).mean() - kl.mean()


def vl_absolute_error(x_hat, x, mu, logvar, kl_tolerance):
    kl = torch.clamp(_kl(mu, logvar), min=kl_tolerance * mu.shape[1])
    return (x_hat - x).abs().flatten(1).sum(1).mean() + kl.mean()


def vl_returns_python_float(x_hat, x, mu, logvar, kl_tolerance):
    kl = torch.clamp(_kl(mu, logvar), min=kl_tolerance * mu.shape[1])
    return float(_rec(x_hat, x).mean() + kl.mean())


def vl_per_image_vector(x_hat, x, mu, logvar, kl_tolerance):
    return _rec(x_hat, x) + torch.clamp(_kl(mu, logvar), min=kl_tolerance * mu.shape[1])


def vl_subtracts_tolerance(x_hat, x, mu, logvar, kl_tolerance):
    # a "free bits" misread: subtract the allowance instead of flooring at it
    kl = torch.relu(_kl(mu, logvar) - kl_tolerance * mu.shape[1])
    return _rec(x_hat, x).mean() + kl.mean()


VAE_LOSS = {
    "F.mse_loss (mean over pixels)": vl_mse_mean_over_pixels,
    "sum over the batch": vl_sum_over_batch,
    "tolerance on the batch mean": vl_tolerance_on_batch_mean,
    "floor is kl_tolerance, not kl_tolerance * Z": vl_tolerance_not_times_z,
    "no tolerance": vl_no_tolerance,
    "min instead of max": vl_min_instead_of_max,
    "binary cross-entropy": vl_binary_cross_entropy,
    "KL averaged over Z": vl_kl_mean_over_z,
    "KL subtracted": vl_kl_subtracted,
    "absolute error": vl_absolute_error,
    "returns a Python float": vl_returns_python_float,
    "per-image vector, not a scalar": vl_per_image_vector,
    "tolerance subtracted (relu)": vl_subtracts_tolerance,
}


# --- ch02.encode_for_memory -------------------------------------------------------------------


def _images(frames):
    return torch.from_numpy(frames).float().permute(0, 3, 1, 2) / 255


def em_not_scaled(vae, frames, eps=None):
    with torch.no_grad():
        mu, logvar = vae.encode(torch.from_numpy(frames).float().permute(0, 3, 1, 2))
    return mu if eps is None else mu + torch.exp(0.5 * logvar) * eps


def em_minus_one_to_one(vae, frames, eps=None):
    with torch.no_grad():
        mu, logvar = vae.encode(torch.from_numpy(frames).float().permute(0, 3, 1, 2) / 127.5 - 1)
    return mu if eps is None else mu + torch.exp(0.5 * logvar) * eps


def em_reshape_channels(vae, frames, eps=None):
    with torch.no_grad():
        mu, logvar = vae.encode(torch.from_numpy(frames).float().reshape(-1, 3, 64, 64) / 255)
    return mu if eps is None else mu + torch.exp(0.5 * logvar) * eps


def em_height_width_swapped(vae, frames, eps=None):
    with torch.no_grad():
        mu, logvar = vae.encode(torch.from_numpy(frames).float().permute(0, 3, 2, 1).contiguous() / 255)
    return mu if eps is None else mu + torch.exp(0.5 * logvar) * eps


def em_logvar_as_sigma(vae, frames, eps=None):
    with torch.no_grad():
        mu, logvar = vae.encode(_images(frames))
    return mu if eps is None else mu + logvar * eps


def em_variance_as_sigma(vae, frames, eps=None):
    with torch.no_grad():
        mu, logvar = vae.encode(_images(frames))
    return mu if eps is None else mu + torch.exp(logvar) * eps


def em_forward_samples_its_own_noise(vae, frames, eps=None):
    with torch.no_grad():
        return vae(_images(frames)).z


def em_always_mu(vae, frames, eps=None):
    with torch.no_grad():
        return vae.encode(_images(frames))[0]


def em_no_grad_forgotten(vae, frames, eps=None):
    mu, logvar = vae.encode(_images(frames))
    return mu if eps is None else mu + torch.exp(0.5 * logvar) * eps


def em_returns_mu_and_logvar(vae, frames, eps=None):
    with torch.no_grad():
        return vae.encode(_images(frames))


def em_returns_numpy(vae, frames, eps=None):
    with torch.no_grad():
        mu, logvar = vae.encode(_images(frames))
    return (mu if eps is None else mu + torch.exp(0.5 * logvar) * eps).numpy()


def em_draws_own_eps(vae, frames, eps=None):
    with torch.no_grad():
        mu, logvar = vae.encode(_images(frames))
    return mu if eps is None else mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def em_scales_in_place(vae, frames, eps=None):
    frames //= 2  # "halve the range first" done on the caller's array
    with torch.no_grad():
        mu, logvar = vae.encode(torch.from_numpy(frames).float().permute(0, 3, 1, 2) / 127.5)
    return mu if eps is None else mu + torch.exp(0.5 * logvar) * eps


def em_first_frame_only(vae, frames, eps=None):
    with torch.no_grad():
        mu, logvar = vae.encode(_images(frames[:1]))
    mu, logvar = mu.expand(len(frames), -1), logvar.expand(len(frames), -1)
    return mu if eps is None else mu + torch.exp(0.5 * logvar) * eps


ENCODE_FOR_MEMORY = {
    "pixels not scaled to [0, 1]": em_not_scaled,
    "pixels scaled to [-1, 1]": em_minus_one_to_one,
    "reshape instead of permute (channels scrambled)": em_reshape_channels,
    "height and width swapped": em_height_width_swapped,
    "logvar used as sigma": em_logvar_as_sigma,
    "variance used as sigma": em_variance_as_sigma,
    "V's forward (samples its own noise)": em_forward_samples_its_own_noise,
    "always mu, eps ignored": em_always_mu,
    "no torch.no_grad (a graph into V)": em_no_grad_forgotten,
    "returns (mu, logvar)": em_returns_mu_and_logvar,
    "returns a NumPy array": em_returns_numpy,
    "draws its own noise": em_draws_own_eps,
    "changes the frames in place": em_scales_in_place,
    "encodes only the first frame": em_first_frame_only,
}

WRONG_VERSIONS = {
    "ch02.reparameterize": REPARAMETERIZE,
    "ch02.kl_divergence": KL_DIVERGENCE,
    "ch02.vae_loss": VAE_LOSS,
    "ch02.encode_for_memory": ENCODE_FOR_MEMORY,
}
