"""wmlib: the World Models agent (Ha & Schmidhuber, 2018), small and readable.

The agent has three parts, named by the paper's letters:

    V  (vae.py)        a convolutional VAE that compresses a 64x64x3 frame into a latent z
    M  (mdnrnn.py)     an MDN-RNN that remembers (hidden state h) and predicts p(z_{t+1} | z_t, a_t, h_t)
    C  (controller.py) a linear map from [z, h] to an action, trained by CMA-ES (cmaes.py)

Data flows one way: frames -> V -> z -> M -> h -> C -> action. In the dream (dream.py) M's own
samples replace the frames and V.

Shape legend used in every docstring:

    B  batch size                   T  time steps in a sequence
    Z  latent size (32 in the paper) A  action size (3 for CarRacing, 2 one-hot for CartPole)
    H  LSTM hidden size (256)       K  mixture components per latent dimension (5)
    C, H, W  image channels, height, width (3, 64, 64) in image tensors

Images are uint8 (H, W, C) in the environment and rollout files, and float32 (B, C, H, W) in
[0, 1] inside the networks.
"""

__version__ = "0.1.0"
