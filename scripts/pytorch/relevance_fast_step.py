"""One training step of the relevance lab's `fast` preset in PyTorch: the β-VAE of
`src/relevance/model.rs` written again (MLP 8-64-64-16 encoder to mean and log-variance,
MLP 8-64-64-8 decoder), Gaussian reconstruction 0.5 * squared error + β KL per event,
batch 256, Adam at 1e-3. The reference that `latent-lab bench vae-relevance --what
train-step` is compared with. Prints one JSON object like `latent-lab bench --json`.
"""

import argparse
import json

import torch
from torch import nn

from steptime import time_steps


def mlp(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--features", type=int, default=8)
    p.add_argument("--latent", type=int, default=8)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--beta", type=float, default=0.02)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--warmup", type=int, default=20)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    encoder = mlp([a.features, a.hidden, a.hidden, 2 * a.latent])
    decoder = mlp([a.latent, a.hidden, a.hidden, a.features])
    params = list(encoder.parameters()) + list(decoder.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    data = torch.randn(5000, a.features)

    def step():
        x = data[torch.randint(0, data.shape[0], (a.batch,))]
        mu, logvar = encoder(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = 0.5 * (decoder(z) - x).pow(2).sum() / a.batch
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / a.batch
        loss = recon + a.beta * kl
        opt.zero_grad()
        loss.backward()
        opt.step()

    print(json.dumps({
        "implementation": f"pytorch {torch.__version__}",
        "preset": "fast", "batch": a.batch, "threads": a.threads,
        **time_steps(step, a.warmup, a.steps),
    }))

if __name__ == "__main__":
    main()
