"""Writing digits with a trained SS-VAE: a style ``z`` encoded from an image or drawn
from the prior, decoded as every digit 0-9 (the figures of book/ssvae.md)."""

from __future__ import annotations

import torch

from bdl_src.ssvae import SSVAE, classify
from bdl_src.ssvae_data import NUM_CLASSES


@torch.no_grad()
def encode_style(ssvae: SSVAE, images: torch.Tensor,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
    """The style of each image: the mean of q(z | code, y) at the mean code, (N, z_dim).
    Without ``labels`` each image's digit is the one q(y | x) finds most probable."""
    if labels is None:
        labels = classify(ssvae, images).argmax(-1)
    return ssvae.encoder(ssvae.m1.encode(images)[0], labels)[0]


@torch.no_grad()
def write_digits(ssvae: SSVAE, z: torch.Tensor) -> torch.Tensor:
    """Every digit in every style: the styles ``z`` (R, z_dim) and the digits 0-9 pass
    through both decoders (taking the mean code); pixel probabilities (R, 10, 784)."""
    digits = torch.arange(NUM_CLASSES, device=z.device)
    code = ssvae.decoder(z[:, None, :], digits)[0]  # (R, 10, code_dim)
    return torch.sigmoid(ssvae.m1.decoder(code))


@torch.no_grad()
def style_grid(ssvae: SSVAE, images: torch.Tensor,
               labels: torch.Tensor | None = None) -> torch.Tensor:
    """Rows: the style encoded from each image; columns: the digits 0-9. (R, 10, 784)"""
    return write_digits(ssvae, encode_style(ssvae, images, labels))


@torch.no_grad()
def sample_digits(ssvae: SSVAE, num_styles: int, seed: int = 0) -> torch.Tensor:
    """New images: ``num_styles`` styles z ~ Normal(0, I), each written as every digit,
    shape (num_styles, 10, 784)."""
    gen = torch.Generator().manual_seed(seed)
    return write_digits(ssvae, torch.randn(num_styles, ssvae.z_dim, generator=gen))
