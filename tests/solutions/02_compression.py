"""Solutions to course/02_compression.ipynb, written as a learner would (no wmlib reference inside)."""

SOLUTIONS = {
    "ch02.kl_divergence": '''
def kl_divergence(mu, logvar):
    """KL( N(mu, exp(logvar)) || N(0, I) ) for each sample, in nats."""
    per_dim = 0.5 * (logvar.exp() + mu**2 - 1.0 - logvar)
    return per_dim.sum(dim=-1)
''',
    "ch02.reparameterize": '''
def reparameterize(mu, logvar, eps):
    """A sample z ~ N(mu, exp(logvar)) that gradients can flow through."""
    sigma = torch.exp(0.5 * logvar)
    return mu + sigma * eps
''',
    "ch02.vae_loss": '''
def vae_loss(x_hat, x, mu, logvar, kl_tolerance):
    """The negative ELBO with free bits, one number for the batch."""
    batch, z_dim = mu.shape
    squared_error = ((x_hat - x) ** 2).reshape(batch, -1).sum(dim=1)
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)
    kl = torch.clamp(kl, min=kl_tolerance * z_dim)
    return squared_error.mean() + kl.mean()
''',
    "ch02.encode_for_memory": '''
def encode_for_memory(vae, frames, eps=None):
    """uint8 frames (B, 64, 64, 3) -> what M reads, z (B, Z): mu, or mu + sigma * eps when eps is given."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0   # (B, 3, 64, 64) in [0, 1]
    with torch.no_grad():
        mu, logvar = vae.encode(x)
    if eps is None:
        return mu
    return mu + torch.exp(0.5 * logvar) * eps
''',
}
