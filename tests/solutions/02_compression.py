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
}
