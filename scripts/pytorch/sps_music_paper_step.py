"""One training step of the SPS music model at the paper's sizes, in PyTorch, written from the
paper's description (DESIGN.md, "SPS notes"): the reference that `latent-lab bench sps-music
--what train-step --preset paper` is compared with.

Batch: 32 sequences of 15 notes, each note a 513x5 log-magnitude spectrum in [0, 1]; K = 4
translations of the pitch latent in U(-4, 4); the prior a 1-layer tanh RNN (hidden 256) on the
pitch dimension, the first 3 notes given. Loss (sums over the batch, divided by it): BCE
reconstruction + 0.01 KL + BCE of the prior's decoded predictions + 2 x prior MSE + 4 x
symmetry MSE + BCE of the decoded symmetric predictions. Adam, lr 1e-3.

Prints one JSON object like `latent-lab bench --json`: ms_per_step_median/min/max.
"""

import argparse
import json

import torch
from torch import nn
import torch.nn.functional as F

from steptime import time_steps

BINS, FRAMES, SEQ, GIVEN = 513, 5, 15, 3


class SpsMusic(nn.Module):
    def __init__(self, latent=3, rnn_hidden=256):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 64, (5, 5), stride=(2, 1), padding=(1, 0)), nn.ReLU(),
            nn.Conv2d(64, 64, (8, 1), stride=(4, 1), padding=(2, 0)), nn.ReLU(),
            nn.Conv2d(64, 128, (4, 1), stride=(2, 1), padding=(1, 0)), nn.ReLU(),
            nn.Conv2d(128, 128, (4, 1), stride=(2, 1), padding=(1, 0)), nn.ReLU(),
        )
        self.fc11 = nn.Linear(2048, latent)
        self.fc12 = nn.Linear(2048, latent)
        self.fc3 = nn.Sequential(
            nn.Linear(latent, 16), nn.ReLU(), nn.Linear(16, 64), nn.ReLU(),
            nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU(),
            nn.Linear(1024, 2048),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(128, 128, (4, 1), stride=(2, 1), padding=(1, 0)), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, (4, 1), stride=(2, 1), padding=(1, 0)), nn.ReLU(),
            nn.ConvTranspose2d(64, 64, (8, 1), stride=(4, 1), padding=(2, 0)), nn.ReLU(),
            nn.ConvTranspose2d(64, 1, (5, 5), stride=(2, 1), padding=(1, 0)),
        )
        self.rnn = nn.RNN(1, rnn_hidden, batch_first=True)
        self.fc2 = nn.Linear(rnn_hidden, 1)

    def encode(self, x):
        h = self.encoder(x).flatten(1)
        return self.fc11(h), self.fc12(h)

    def decode_logits(self, z):
        return self.decoder(self.fc3(z).view(-1, 128, 16, 1))

    def predict(self, z_pitch):
        """Teacher-forced prior along (B, S, 1): the prediction of notes 1..S-1."""
        out, _ = self.rnn(z_pitch[:, :-1])
        return self.fc2(out)


def step_loss(model, x, k, t_range=4.0):
    b = x.shape[0] // SEQ
    mu, logvar = model.encode(x)
    z = (mu + torch.randn_like(mu) * logvar.exp() * 0.5).view(b, SEQ, -1)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    z_pitch, z_timbre = z[..., :1], z[..., 1:]
    timbre_next = z_timbre[:, :-1]
    x_next = x.view(b, SEQ, 1, BINS, FRAMES)[:, 1:].reshape(-1, 1, BINS, FRAMES)

    pred = model.predict(z_pitch)
    prior_mse = F.mse_loss(pred, z_pitch[:, 1:], reduction="sum")
    t = (torch.rand(b * k, 1, 1) * 2 - 1) * t_range
    z_rep = z_pitch.repeat(k, 1, 1)
    back = model.predict(z_rep + t) - t
    symm_mse = F.mse_loss(back, z_rep[:, 1:], reduction="sum") / k

    decode_in = torch.cat([
        z.reshape(b * SEQ, -1),
        torch.cat([pred, timbre_next], 2).reshape(b * (SEQ - 1), -1),
        torch.cat([back, timbre_next.repeat(k, 1, 1)], 2).reshape(b * k * (SEQ - 1), -1),
    ])
    logits = model.decode_logits(decode_in)
    bce = lambda l, y: F.binary_cross_entropy_with_logits(l, y, reduction="sum")
    n_prior = b * (SEQ - 1)
    recon = bce(logits[: b * SEQ], x)
    prior_bce = bce(logits[b * SEQ: b * SEQ + n_prior], x_next)
    symm_bce = bce(logits[b * SEQ + n_prior:], x_next.repeat(k, 1, 1, 1)) / k
    total = recon + 0.01 * kl + prior_bce + 2 * prior_mse + 4 * symm_mse + symm_bce
    return total / b


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = SpsMusic()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    # spectra-like inputs in [0, 1]; the step's cost does not depend on their values
    x = torch.rand(a.batch * SEQ, 1, BINS, FRAMES) ** 4
    last = {}

    def step():
        opt.zero_grad()
        loss = step_loss(model, x, a.k)
        loss.backward()
        opt.step()
        last["loss"] = float(loss.detach())

    timing = time_steps(step, a.warmup, a.steps)
    print(json.dumps({
        "implementation": f"pytorch {torch.__version__}",
        "preset": "paper", "batch": a.batch, "k": a.k, "threads": a.threads,
        **timing, "loss": last["loss"],
    }))

if __name__ == "__main__":
    main()
