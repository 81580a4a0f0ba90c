"""Synthetic codebook streams whose dependence is known, and a predictor fitted to their past."""

import torch


def vector_autoregression(within_step: float, seed: int, batch: int = 8, codebooks: int = 3, dim: int = 2,
                          frames: int = 120) -> torch.Tensor:
    """``[B, K, D, T]`` streams: each codebook's next vector from the mean of all codebooks' last ones,
    plus fresh noise; the codebooks depend on each other only through their shared past, unless
    ``within_step`` > 0 shares part of the noise of one step between them."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.zeros(batch, codebooks, dim, frames)
    for t in range(1, frames):
        noise = torch.randn(batch, codebooks, dim, generator=generator)
        noise = noise + within_step * noise[:, :1]
        x[..., t] = 0.95 * x[..., t - 1].mean(1, keepdim=True) + 0.3 * noise
    return x[..., 20:]  # past the start-up transient


def fitted_predictor(streams: torch.Tensor, steps: int = 300, kind: str = "conv"):
    """A :class:`~audiocraft_mmd.losses.innovations.CausalPredictor` of ``kind`` trained on its NLL of ``streams``
    (a GRU fits these more slowly: 0.004 left on the innovations after 1000 steps, against 0.0005 for the
    convolution after 300)."""
    from audiocraft_mmd.losses.innovations import CausalPredictor, innovations
    torch.manual_seed(0)
    predictor = CausalPredictor(streams.shape[1], streams.shape[2], hidden=32, receptive_field=2, kind=kind)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same fit whatever the machine's thread count: the tests' figures were measured so
    try:
        for _ in range(steps):
            nll = innovations(streams, predictor).nll
            optimizer.zero_grad()
            nll.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return predictor
