"""The price of the parallel factorisation from parallel and depth LM cross-entropies (fake CE figures)."""

import pytest

from audiocraft_mmd.metrics.factorisation_price import (
    FactorisationPriceError, factorisation_price, price_markdown, prices_by_codec)
from audiocraft_mmd.metrics.lm_measures import Cell


def cell(pattern: str, seed: int, ce, codec: str = "//sig/a") -> Cell:
    return Cell(codec=codec, pattern=pattern, sig=f"{pattern}{seed}", consistent=True, valid_ce=sum(ce) / len(ce),
                valid_ce_per_codebook=list(ce), steps_per_second=50., gen_seconds=1., rtf=1., lm_params=1,
                frame_rate=50., lm_seed=seed)


def test_one_seed_gaps_control_and_price():
    price = factorisation_price([[1.0, 2.0, 3.0, 4.0]], [[0.9, 1.7, 2.6, 3.8]], frame_rate=50.)
    assert [g.mean for g in price.gap] == pytest.approx([0.1, 0.3, 0.4, 0.2])
    assert price.control.mean == pytest.approx(0.1)
    assert price.gap_rest.mean == pytest.approx(0.3)                      # (0.3 + 0.4 + 0.2) / 3
    assert price.gap_rest_less_control.mean == pytest.approx(0.2)
    assert price.price_per_frame.mean == pytest.approx(0.6)               # 0.2 + 0.3 + 0.1
    assert price.parallel_per_frame.mean == pytest.approx(10.) and price.depth_per_frame.mean == pytest.approx(9.)
    assert price.parallel_per_second.mean == pytest.approx(500.) and price.price_per_second.mean == pytest.approx(30.)
    assert all(g.spread == 0 for g in price.gap) and not price.beyond_spread  # one seed: never beyond


def test_seed_spread_is_the_range_of_the_paired_figures():
    parallel = [[1.0, 2.0, 3.0], [1.1, 2.0, 3.0]]
    depth = [[1.0, 1.8, 2.8], [1.0, 1.9, 2.9]]
    price = factorisation_price(parallel, depth)
    # seed 1: gaps 0.0 / 0.2 / 0.2, rest-less-control 0.2; seed 2: 0.1 / 0.1 / 0.1, rest-less-control 0.0
    assert price.control.mean == pytest.approx(0.05) and price.control.spread == pytest.approx(0.1)
    assert price.gap_rest_less_control.mean == pytest.approx(0.1)
    assert price.gap_rest_less_control.spread == pytest.approx(0.2)
    assert not price.beyond_spread and price.parallel_per_second is None
    clear = factorisation_price([[1.0, 2.0, 3.0], [1.01, 2.0, 3.0]], [[1.0, 1.8, 2.8], [1.0, 1.81, 2.8]])
    assert clear.beyond_spread


def test_the_same_information_on_codebook_1_gives_no_price():
    """Depth better by the same amount everywhere: training, not factorisation."""
    price = factorisation_price([[1.0, 2.0, 3.0, 4.0]], [[0.95, 1.95, 2.95, 3.95]])
    assert price.gap_rest.mean == pytest.approx(0.05) and price.gap_rest_less_control.mean == pytest.approx(0.)


BAD_FIGURES = [([], []), ([[1., 2.]], []), ([[1.]], [[1.]]), ([[1., 2.]], [[1., 2., 3.]])]


@pytest.mark.parametrize("parallel, depth", BAD_FIGURES)
def test_bad_figures_are_refused(parallel, depth):
    with pytest.raises(FactorisationPriceError):
        factorisation_price(parallel, depth)


def test_cells_are_paired_by_codec_and_lm_seed():
    cells = [cell("parallel", 1, [1.0, 2.0]), cell("depth", 2, [0.0, 0.0]), cell("depth", 1, [1.0, 1.5]),
             cell("delay", 1, [0.0, 0.0]), cell("parallel", 1, [1.0, 2.0], codec="//sig/b")]
    prices = prices_by_codec(cells)
    assert list(prices) == ["//sig/a"]                                      # b has no depth cell
    price = prices["//sig/a"]
    assert price.num_seeds == 1 and price.gap_rest_less_control.mean == pytest.approx(0.5)
    assert price.price_per_second.mean == pytest.approx(25.)
    text = price_markdown("//sig/a", price)
    assert "q1 (control)" in text and "| gap on q2..q2 less the control, nats per code | 0.500 |" in text
    assert "--lm-seeds 2" in text
    assert price.as_dict()["price_per_second"]["mean"] == pytest.approx(25.)
