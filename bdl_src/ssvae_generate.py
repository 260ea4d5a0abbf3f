"""Writing digits with a trained SS-VAE: a style ``z`` encoded from an image or drawn
from the prior, decoded as every digit 0-9 by M2's decoder into a code and by M1's
decoder into pixels (the figures of book/ssvae.md)."""

from __future__ import annotations

import torch

from bdl_src.m1 import M1
from bdl_src.ssvae import SSVAE, classify
from bdl_src.ssvae_data import NUM_CLASSES


@torch.no_grad()
def encode_style(ssvae: SSVAE, m1: M1, images: torch.Tensor,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
    """The style of each image: the mean of q(z | code, y) at M1's mean code, (N,
    z_dim). Without ``labels`` each image's digit is the one q(y | code) finds most
    probable."""
    code = m1.encode(images)[0]
    if labels is None:
        labels = classify(ssvae, code).argmax(-1)
    return ssvae.encoder(code, labels)[0]


@torch.no_grad()
def write_digits(ssvae: SSVAE, m1: M1, z: torch.Tensor) -> torch.Tensor:
    """Every digit in every style: the styles ``z`` (R, z_dim) and the digits 0-9 pass
    through M2's decoder (taking the mean code) and M1's decoder; pixel probabilities
    (R, 10, 784)."""
    digits = torch.arange(NUM_CLASSES, device=z.device)
    code = ssvae.decoder(z[:, None, :], digits)[0]  # (R, 10, code_dim)
    return torch.sigmoid(m1.decoder(code))


@torch.no_grad()
def style_grid(ssvae: SSVAE, m1: M1, images: torch.Tensor,
               labels: torch.Tensor | None = None) -> torch.Tensor:
    """Rows: the style encoded from each image; columns: the digits 0-9. (R, 10, 784)"""
    return write_digits(ssvae, m1, encode_style(ssvae, m1, images, labels))


@torch.no_grad()
def sample_digits(ssvae: SSVAE, m1: M1, num_styles: int, seed: int = 0
                  ) -> torch.Tensor:
    """New images: ``num_styles`` styles z ~ Normal(0, I), each written as every digit,
    shape (num_styles, 10, 784)."""
    gen = torch.Generator().manual_seed(seed)
    return write_digits(ssvae, m1, torch.randn(num_styles, ssvae.z_dim, generator=gen))
