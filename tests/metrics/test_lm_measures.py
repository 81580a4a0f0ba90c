"""The LM measures' generation timing: the process's start-up is paid by an untimed generation, not by the first
LM timed."""

import torch

from audiocraft_mmd.metrics import lm_measures


class CountingLM:
    def __init__(self):
        self.calls = 0

    def generate(self, prompt, attributes, max_gen_len, **kwargs):
        self.calls += 1
        return torch.zeros(len(attributes), 4, max_gen_len, dtype=torch.long)


class Codec:
    frame_rate = 100

    def decode(self, tokens, scale):
        return torch.zeros(tokens.shape[0], 1, tokens.shape[-1] * 80)


def test_only_the_process_first_generation_is_preceded_by_an_untimed_one(monkeypatch):
    monkeypatch.setattr(lm_measures, "_warmed_up", False)
    first, second = CountingLM(), CountingLM()
    _, audio = lm_measures.time_generation(first, Codec(), 2, 0.5, seed=0)
    lm_measures.time_generation(second, Codec(), 2, 0.5, seed=0)
    assert (first.calls, second.calls) == (2, 1)
    assert audio.shape == (2, 1, 50 * 80)
