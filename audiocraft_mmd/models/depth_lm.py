"""A joint LM at nearly parallel cost: MusicGen's temporal transformer plus a per-frame depth transformer.

Selected with ``codebooks_pattern.modeling=depth`` (:class:`~audiocraft_mmd.patterns.depth.DepthPatternProvider`
holds the depth sizes). Why a pattern and not a new ``lm_model``: every place that varies the
factorisation of the codes (``compare_patterns``, the study grids, the pattern-consistency check,
exports that AudioCraft's ``load_lm_model`` rebuilds) already varies ``codebooks_pattern.modeling``;
the depth LM is one more factorisation of the same codes, so it is one more value there, and
AudioCraft's ``get_lm_model`` builds :class:`DepthLM` for it (:mod:`audiocraft_mmd.integration`).

Model (RQ-Transformer, CVPR 2022; Moshi's depth transformer): the temporal transformer is
AudioCraft's ``LMModel`` over the parallel layout (its embeddings, ``StreamingTransformer``,
conditioners, fuser and KV cache), giving a state h_t from frames < t. A small causal depth
transformer runs over the K codebooks of frame t: its input at depth position 0 is a projection of
h_t, at position k > 0 the embedding of code q_{k-1} of the same frame (plus, with ``context=every``,
its own projection of h_t, as in Moshi); every position adds a learned depth-position embedding;
position k outputs the logits of q_k. So code k of frame t sees
all earlier frames and codes < k of its own frame, nothing else: the frame's joint distribution is
modelled, with T temporal steps and T x K cheap depth steps.

Training is teacher-forced: :meth:`DepthLM.compute_predictions` returns logits [B, K, T, card] and an
all-true mask, as ``LMModel.compute_predictions`` does, so MusicGen's solver (CE per codebook
``ce_q{k}``) is unchanged. Generation is ``LMModel.generate`` (prompts, conditions, classifier-free
guidance in one or two passes, streaming KV cache of the temporal transformer), with the per-step
sampling replaced by one temporal step and K depth steps (KV-cached, top-k / top-p / temperature and
CFG at every depth step).
"""

from __future__ import annotations

import typing as tp

import torch
from torch import nn
from torch.nn import functional as F

from audiocraft.models.lm import LMModel, LMOutput, ScaledEmbedding, init_layer
from audiocraft.modules.conditioners import ConditioningAttributes
from audiocraft.utils import utils

class DepthLayer(nn.Module):
    """Pre-norm causal self-attention and feed-forward block over depth positions: all at once
    (:meth:`forward`, teacher-forced), or one after the cached ones (:func:`depth_layer_step`, sampling).

    Plain modules read by functional calls: K depth steps per frame must cost little, and AudioCraft's
    streaming transformer adds per-call bookkeeping that dominates at this size.
    """

    def __init__(self, dim: int, num_heads: int, hidden_scale: int, **factory: tp.Any):
        super().__init__()
        self.num_heads = num_heads
        self.norm_attn = nn.LayerNorm(dim, **factory)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False, **factory)
        self.out = nn.Linear(dim, dim, bias=False, **factory)
        self.norm_ff = nn.LayerNorm(dim, **factory)
        self.ff_in = nn.Linear(dim, hidden_scale * dim, **factory)
        self.ff_out = nn.Linear(hidden_scale * dim, dim, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, L, D]: L causal positions."""
        N, L, D = x.shape
        weights, eps = self.weights(), self.norm_attn.eps
        qkv = _attention_input(x, weights, eps)
        q, k, v = qkv.view(N, L, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return _feed_forward(x + F.linear(attn.transpose(1, 2).reshape(N, L, D), self.out.weight), weights, eps)

    def weights(self) -> tp.List[torch.Tensor]:
        """This layer's parameters, in the order the functional helpers read them (its layer norms, like the
        depth transformer's final one, keep ``nn.LayerNorm``'s eps: one eps serves them all)."""
        return [self.norm_attn.weight, self.norm_attn.bias, self.qkv.weight, self.out.weight, self.norm_ff.weight,
                self.norm_ff.bias, self.ff_in.weight, self.ff_in.bias, self.ff_out.weight, self.ff_out.bias]


def _attention_input(x: torch.Tensor, weights: tp.List[torch.Tensor], eps: float) -> torch.Tensor:
    """Queries, keys and values [..., 3 D] of x [..., D] (pre-norm)."""
    return F.linear(F.layer_norm(x, [x.shape[-1]], weights[0], weights[1], eps), weights[2])


def _feed_forward(x: torch.Tensor, weights: tp.List[torch.Tensor], eps: float) -> torch.Tensor:
    """x plus the pre-norm feed-forward of x (tanh GELU: the exact erf one is 4x slower on CPU)."""
    h = F.linear(F.layer_norm(x, [x.shape[-1]], weights[4], weights[5], eps), weights[6], weights[7])
    return x + F.linear(F.gelu(h, approximate="tanh"), weights[8], weights[9])


class DepthLM(LMModel):
    """MusicGen's ``LMModel`` whose per-codebook output heads are replaced by a depth transformer.

    Same constructor as ``LMModel``; the depth transformer's sizes are read from the pattern
    provider (``num_layers``, ``dim``, ``num_heads``, ``hidden_scale`` of
    :class:`~audiocraft_mmd.patterns.depth.DepthPatternProvider`).
    """

    def __init__(self, pattern_provider, condition_provider, fuser, n_q: int = 8, card: int = 1024,
                 dim: int = 128, emb_lr: tp.Optional[float] = None, bias_proj: bool = True,
                 weight_init: tp.Optional[str] = None, zero_bias_init: bool = False, **kwargs: tp.Any):
        super().__init__(pattern_provider, condition_provider, fuser, n_q=n_q, card=card, dim=dim,
                         emb_lr=emb_lr, bias_proj=bias_proj, weight_init=weight_init,
                         zero_bias_init=zero_bias_init, **kwargs)
        factory = {key: kwargs[key] for key in ("device", "dtype") if kwargs.get(key) is not None}
        depth_dim = pattern_provider.dim
        self.depth_dim = depth_dim
        self.depth_in = nn.Linear(dim, depth_dim, **factory)  # h_t -> depth position 0
        # Codes 0..K-2 of the frame feed depth positions 1..K-1 (the last code feeds nothing).
        self.depth_emb = nn.ModuleList([ScaledEmbedding(card, depth_dim, lr=emb_lr, **factory)
                                        for _ in range(n_q - 1)])
        # With context=every, depth position k > 0 also adds its own projection of h_t.
        self.depth_ctx = nn.ModuleList([nn.Linear(dim, depth_dim, **factory) for _ in range(n_q - 1)]
                                       if pattern_provider.context == "every" else [])
        self.depth_pos = nn.Parameter(torch.zeros(n_q, depth_dim, **factory))
        self.depth_layers = nn.ModuleList([
            DepthLayer(depth_dim, pattern_provider.num_heads, pattern_provider.hidden_scale, **factory)
            for _ in range(pattern_provider.num_layers)])
        self.depth_norm = nn.LayerNorm(depth_dim, **factory)
        # Replaces LMModel's heads (dim -> card): code k's logits come from depth position k.
        self.linears = nn.ModuleList([nn.Linear(depth_dim, card, bias=bias_proj, **factory) for _ in range(n_q)])
        nn.init.normal_(self.depth_pos, std=depth_dim ** -0.5)
        if weight_init is not None:
            for module in [self.depth_in, *self.depth_ctx, *self.depth_emb, *self.depth_layers, *self.linears]:
                module.apply(lambda m: init_layer(m, method=weight_init, zero_bias_init=zero_bias_init))

    # ---- temporal transformer (LMModel.forward without its output heads) ----

    def temporal_states(self, sequence: torch.Tensor, conditions: tp.List[ConditioningAttributes],
                        condition_tensors: tp.Optional[dict] = None) -> torch.Tensor:
        """States [B, S, dim] of the temporal transformer over a parallel-layout sequence [B, K, S].

        The state at step s has seen steps <= s, so it predicts the frame of step s + 1.
        """
        B, K, S = sequence.shape
        assert K == self.num_codebooks, "Sequence shape must match the specified number of codebooks"
        input_ = sum([self.emb[k](sequence[:, k]) for k in range(K)])
        if condition_tensors is None:
            assert not self._is_streaming, "Conditions tensors should be precomputed when streaming."
            conditions = self.att_dropout(self.cfg_dropout(conditions))
            condition_tensors = self.condition_provider(self.condition_provider.tokenize(conditions))
        else:
            assert not conditions, "Shouldn't pass both conditions and condition_tensors."
        input_, cross_attention_input = self.fuser(input_, condition_tensors)
        out = self.transformer(input_, cross_attention_src=cross_attention_input)
        if self.out_norm:
            out = self.out_norm(out)
        return out[:, -S:]  # drop the prepended conditions, if any

    # ---- depth transformer ----

    def frame_context(self, states: torch.Tensor) -> torch.Tensor:
        """What the K depth positions receive before any code: [..., K, depth_dim] from states [..., dim].

        Position 0 gets its projection of the state; with ``context=every`` each position k > 0 gets its
        own too (one matrix product for all); every position adds its position embedding.
        """
        projections = [self.depth_in, *self.depth_ctx]
        context = F.linear(states, torch.cat([p.weight for p in projections]), torch.cat([p.bias for p in projections]))
        context = context.unflatten(-1, (len(projections), self.depth_dim))
        # With context=first, positions k > 0 read no state.
        return F.pad(context, (0, 0, 0, self.num_codebooks - len(projections))) + self.depth_pos

    def code_input(self, k: int, codes: torch.Tensor) -> torch.Tensor:
        """Embedding [..., depth_dim] of codes [...] of codebook k, the input they add to depth position k + 1."""
        embedding = tp.cast(nn.Embedding, self.depth_emb[k])  # a ScaledEmbedding; ModuleList items are typed Module
        return F.embedding(codes, embedding.weight)

    def depth_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, K, card] of the K depth positions of a frame from their inputs x [N, K, depth_dim]."""
        for layer in self.depth_layers:
            x = layer(x)
        x = F.layer_norm(x, (self.depth_dim,), self.depth_norm.weight, self.depth_norm.bias, self.depth_norm.eps)
        return torch.stack([self.linears[k](x[:, k]) for k in range(x.shape[1])], dim=1)

    # ---- teacher-forced likelihood ----

    def forward(self, codes: torch.Tensor, conditions: tp.List[ConditioningAttributes],
                condition_tensors: tp.Optional[dict] = None, stage: int = -1) -> torch.Tensor:
        """Teacher-forced logits [B, K, T, card] of codes [B, K, T] (code k of frame t from frames < t
        and codes < k of frame t)."""
        B, K, T = codes.shape
        start = torch.full((B, K, 1), self.special_token_id, dtype=codes.dtype, device=codes.device)
        states = self.temporal_states(torch.cat([start, codes[..., :-1]], dim=-1), conditions,
                                      condition_tensors)  # [B, T, dim]: state t has seen frames < t
        lower = torch.stack([self.code_input(k, codes[:, k]) for k in range(K - 1)], dim=2)  # [B, T, K-1, depth_dim]
        x = self.frame_context(states) + F.pad(lower, (0, 0, 1, 0))  # code k - 1 feeds position k
        return self.depth_logits(x.reshape(B * T, K, self.depth_dim)).view(B, T, K, -1).transpose(1, 2)

    def compute_predictions(self, codes: torch.Tensor, conditions: tp.List[ConditioningAttributes],
                            condition_tensors: tp.Optional[dict] = None, stage: int = -1,
                            keep_only_valid_steps: bool = True) -> LMOutput:
        """As ``LMModel.compute_predictions``: logits [B, K, T, card] aligned with codes, mask all true."""
        model = self if self._fsdp is None else self._fsdp
        logits = model(codes.contiguous(), conditions, condition_tensors)
        return LMOutput(logits, torch.ones(codes.shape, dtype=torch.bool, device=codes.device))

    # ---- sampling: one temporal step, then K depth steps ----

    def _sample_next_token(self, sequence: torch.Tensor, cfg_conditions, unconditional_state,
                           use_sampling: bool = False, temp: float = 1.0, top_k: int = 0, top_p: float = 0.0,
                           cfg_coef: tp.Optional[float] = None, two_step_cfg: tp.Optional[bool] = None) -> torch.Tensor:
        """The next frame [B, K, 1], sampled code by code (called by ``LMModel.generate``)."""
        B = sequence.shape[0]
        cfg_coef = self.cfg_coef if cfg_coef is None else cfg_coef
        two_step_cfg = self.two_step_cfg if two_step_cfg is None else two_step_cfg
        if two_step_cfg and cfg_conditions != {}:
            condition_tensors, null_condition_tensors = cfg_conditions
            cond = self.temporal_states(sequence, [], condition_tensors)[:, -1]
            state = self.get_streaming_state()
            self.set_streaming_state(unconditional_state)
            uncond = self.temporal_states(sequence, [], null_condition_tensors)[:, -1]
            unconditional_state.update(self.get_streaming_state())
            self.set_streaming_state(state)
            states, guided = torch.cat([cond, uncond]), True
        else:
            guided = bool(cfg_conditions)
            if guided:  # conditional and unconditional halves in one batch
                sequence = torch.cat([sequence, sequence], dim=0)
            states = self.temporal_states(sequence, [], cfg_conditions)[:, -1]  # [B or 2B, dim]
        context = self.frame_context(states)  # [N, K, depth_dim], N = B or 2B
        noise = gumbel_noise(self.num_codebooks, B, self.card, use_sampling, temp, top_k, top_p, device=states.device)
        return self.sample_frame(context, noise, guided, cfg_coef, use_sampling, temp, top_k, top_p)[..., None]

    def sample_frame(self, context: torch.Tensor, noise: tp.Optional[torch.Tensor], guided: bool, cfg_coef: float,
                     use_sampling: bool, temp: float, top_k: int, top_p: float) -> torch.Tensor:
        """The codes [B, K] of one frame, sampled depth position by position (KV-cached) from the positions'
        context [N, K, D] (:meth:`frame_context`; N = 2B with classifier-free guidance, conditional rows
        first). ``noise`` from :func:`gumbel_noise`; with ``guided``, the logits of each position are mixed
        as MusicGen mixes them before the code is drawn, and the code feeds both halves.

        One loop on the weights, read once per frame: a method call per layer and per step cost 7-10 %
        of generation at the study's sizes (docs/research/PERFORMANCE.md#depth-lm-generation).
        """
        N, K, D = context.shape
        B = N // 2 if guided else N
        # ModuleList items are typed Module.
        depth_layers = tp.cast(tp.Sequence[DepthLayer], self.depth_layers)
        heads = tp.cast(tp.Sequence[nn.Linear], self.linears)
        layers = [layer.weights() for layer in depth_layers]
        num_heads, eps = depth_layers[0].num_heads, self.depth_norm.eps
        caches: tp.List[tp.List[torch.Tensor]] = [[] for _ in layers]
        codes: tp.List[torch.Tensor] = []
        x = context[:, 0]
        for k in range(K):
            for weights, cache in zip(layers, caches):
                x = depth_layer_step(x, weights, cache, num_heads, eps)
            head = heads[k]
            logits = F.linear(F.layer_norm(x, [D], self.depth_norm.weight, self.depth_norm.bias, eps),
                              head.weight, head.bias)  # [N, card]
            if guided:
                cond_logits, uncond_logits = logits.split(B, dim=0)
                logits = uncond_logits + (cond_logits - uncond_logits) * cfg_coef
            code = sample_code(logits, use_sampling, temp, top_k, top_p, None if noise is None else noise[k])  # [B, 1]
            codes.append(code)
            if k + 1 < K:
                x = context[:, k + 1] + self.code_input(k, (torch.cat([code, code]) if guided else code).view(-1))
        return torch.cat(codes, dim=1)


def depth_layer_step(x: torch.Tensor, weights: tp.List[torch.Tensor], cache: tp.List[torch.Tensor], num_heads: int,
                     eps: float) -> torch.Tensor:
    """One depth position x [N, D] through a :class:`DepthLayer` (``weights`` from its :meth:`~DepthLayer.weights`),
    after the positions whose keys and values are in ``cache`` ([] at position 0, else [keys, values] of
    shape [N, heads, positions, D / heads]); adds this position's keys and values to ``cache``."""
    N, D = x.shape
    q, k, v = _attention_input(x, weights, eps).view(N, 3, num_heads, 1, D // num_heads).unbind(1)
    if len(cache) > 0:  # growing the cache by concatenation: fewer operations than writing into a buffer
        k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        attn = F.scaled_dot_product_attention(q, k, v)
        cache[0], cache[1] = k, v
    else:  # the first position attends to itself only: its attention output is its value
        attn = v
        cache.append(k)
        cache.append(v)
    return _feed_forward(x + F.linear(attn.reshape(N, D), weights[3]), weights, eps)


def gumbel_noise(steps: int, rows: int, card: int, use_sampling: bool, temp: float, top_k: int, top_p: float,
                 device: tp.Optional[torch.device] = None) -> tp.Optional[torch.Tensor]:
    """Gumbel(0, 1) draws [steps, rows, width] for :func:`sample_code`'s ``steps`` calls on one frame, drawn
    at once (one random call per frame, as the parallel LM makes); width is top-k's k, or the card. None
    where no draw is needed (greedy) or where top-p's sampler is used."""
    if not use_sampling or temp <= 0.0 or top_p > 0.0:
        return None
    width = min(int(top_k), card) if top_k > 0 else card
    return torch.empty(steps, rows, width, device=device).exponential_().log_().neg_()


def sample_code(logits: torch.Tensor, use_sampling: bool, temp: float, top_k: int, top_p: float,
                gumbel: tp.Optional[torch.Tensor] = None) -> torch.Tensor:
    """One code [N, 1] per row of logits [N, card], from MusicGen's distributions (``LMModel._sample_next_token``):
    greedy without sampling, else softmax at ``temp`` restricted to top-p, else to the top-k, else full.

    Top-p is AudioCraft's sampler. Top-k and full softmax are drawn by the Gumbel-max
    trick (the argmax of logits / temp plus Gumbel noise is distributed as the softmax; ``gumbel`` [N, width]
    from :func:`gumbel_noise`, drawn here if None): the same distribution as ``torch.multinomial`` in a
    third of its time, which counts when K of these run per frame.
    """
    if not use_sampling or temp <= 0.0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    if top_p > 0.0:
        return utils.sample_top_p(torch.softmax(logits / temp, dim=-1), p=top_p)
    if gumbel is None:
        width = min(top_k, logits.shape[-1]) if top_k > 0 else logits.shape[-1]
        gumbel = torch.empty(logits.shape[0], width, device=logits.device).exponential_().log_().neg_()
    if top_k > 0:
        values, indices = logits.topk(gumbel.shape[-1], dim=-1)
        return indices.gather(-1, _perturbed(values, temp, gumbel).argmax(dim=-1, keepdim=True))
    return _perturbed(logits, temp, gumbel).argmax(dim=-1, keepdim=True)


def _perturbed(logits: torch.Tensor, temp: float, gumbel: torch.Tensor) -> torch.Tensor:
    """logits / temp + gumbel (no division at the usual temp = 1: one operation fewer per code)."""
    return (logits if temp == 1.0 else logits / temp) + gumbel
