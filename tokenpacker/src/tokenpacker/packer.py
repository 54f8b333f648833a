"""TokenPacker: the coarse-to-fine visual projector (Li et al., arXiv 2407.02392, §3.2 and Algorithm 2).

The projector turns a ViT patch grid into a few LLM tokens in two steps:

1. *Coarse*: bilinear down-sampling of the penultimate-layer patch grid by a factor ``s`` gives one
   **point query** per ``s x s`` window (§3.2 "interpolation").
2. *Fine*: each point query cross-attends to the multi-level features of **its own** window only
   ("region-to-point injection", Algorithm 2); a 2-layer MLP then maps the result to the LLM width.

Shape shorthand::

    B  images                  g  grid_size, patches per side (24 for CLIP ViT-L/14-336)   N = g*g
    s  scale_factor            G  g // s, point queries per side                          M = G*G
    C_v vision_dim             L  num_levels (layers concatenated in x_multi)             C = embed_dim
    h  num_heads, d = C // h   H  llm_dim                                                  S = s*s

    step  operation                                                       shape
    in    x (query layer, HF hidden_states[23]), x_multi (layers 12,16,22,23 concatenated)
                                                                          (B, N, C_v), (B, N, L*C_v)
    1     K = LN(MLP_k(x_multi)), V = LN(MLP_v(x_multi))   MLP = Linear, GELU, Linear   (B, N, C)
    2     q = bilinear_down(x, s) in float32 (align_corners=False), cast back           (B, M, C_v)
    3     Q = LN(W_q q)                                    W_q has no bias               (B, M, C)
    4     regroup K, V into s x s windows, row-major inside a window                    (B, M, S, C)
    5     one multi-head attention: point query i attends to the S keys of window i      (B, M, C)
    6     output MLP: Linear(C, H), GELU, Linear(H, H)                                  (B, M, H)

There is no residual around the attention, no FFN block and only one attention layer (spec §2.3). With
``align_corners=False`` the bilinear down-sampling is exactly 2x2 average pooling for s=2, the window centre
for s=3 and the mean of the central 2x2 for s=4 (spec §2.3); it is *not* average pooling in general.

Initialisation as in the official code: trunc_normal(std 0.02) on every ``nn.Linear`` (the attention's
``out_proj`` included) with zero biases, LayerNorm weight 1 / bias 0; the attention's packed
``in_proj_weight`` keeps PyTorch's xavier-uniform init because it is not an ``nn.Linear``.

Deviations from the official ``TokenPacker`` (CircleRadon/TokenPacker ``multimodal_projector/builder.py``):

- Every hard-coded number (grid 24, widths 4096/1024, 8 heads, LayerNorm eps) is a constructor argument.
- Sub-modules have descriptive names (``query_proj``, ``key_mlp``, ...); ``tokenpacker.convert`` maps them
  to and from the official names (``q_proj_1``, ``k_proj_1``, ...).
- ``forward(x, x_multi)`` takes two tensors instead of the official ``forward((x, x_multi))`` tuple.
- The default ``attention="sdpa"`` computes the windowed attention as one batched
  ``scaled_dot_product_attention`` call with the weights of the ``nn.MultiheadAttention`` module; the
  official sequence-first ``nn.MultiheadAttention`` call is kept as ``attention="official"``. Both give the
  same result up to float rounding (tested). The official code orders its window batch as
  (window-row, window-col, image); ours is (image, window). Windows never interact, so this changes nothing.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TokenPacker", "window_partition", "split_concatenated", "ATTENTION_IMPLS"]

AttentionImpl = Literal["sdpa", "official"]
ATTENTION_IMPLS: tuple[str, ...] = ("sdpa", "official")


def split_concatenated(features: torch.Tensor, vision_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split concatenated multi-level features into the query layer and the multi-level stack.

    Args:
        features: (B, N, L*C_v) hidden states of L vision layers concatenated along channels; the last
            C_v channels are the query layer.
        vision_dim: C_v, the width of one layer.

    Returns:
        ``(x, x_multi)``: x (B, N, C_v) = the last C_v channels, x_multi = ``features`` unchanged.
    """
    if features.ndim != 3 or features.shape[-1] % vision_dim != 0:
        raise ValueError(
            f"expected concatenated features (B, N, L*{vision_dim}), got shape {tuple(features.shape)}"
        )
    return features[..., -vision_dim:], features


def window_partition(tokens: torch.Tensor, grid_size: int, window: int) -> torch.Tensor:
    """Regroup a row-major patch grid into non-overlapping ``window x window`` windows.

    Window ``i = (r, c)`` (row-major over the (g/window)^2 windows) holds the patches
    ``(window*r + a) * g + (window*c + b)`` for ``a, b`` in row-major order; for window 2 window 0 is
    ``[0, 1, g, g + 1]``.

    Args:
        tokens: (B, g*g, C) tokens of a g x g grid in row-major order.
        grid_size: g.
        window: s, which must divide g.

    Returns:
        (B, (g/s)^2, s*s, C).
    """
    batch, num_tokens, channels = tokens.shape
    if num_tokens != grid_size * grid_size or grid_size % window != 0:
        raise ValueError(
            f"cannot cut {num_tokens} tokens of a {grid_size}x{grid_size} grid into {window}x{window} windows"
        )
    out_grid = grid_size // window
    grid = tokens.reshape(batch, out_grid, window, out_grid, window, channels)
    return grid.permute(0, 1, 3, 2, 4, 5).reshape(batch, out_grid * out_grid, window * window, channels)


def _two_layer_mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    """Linear(in, out), GELU, Linear(out, out): the official ``k_proj_1``/``mlp`` layout (keys 0.*, 2.*)."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


class TokenPacker(nn.Module):
    """Coarse-to-fine projector: point queries from bilinear down-sampling, windowed multi-level attention.

    Args:
        vision_dim: C_v, width of one vision layer (1024 for CLIP ViT-L).
        num_levels: L, number of vision layers concatenated in ``x_multi`` (4: layers 12, 16, 22, 23).
        llm_dim: H, width of the LLM embeddings (4096 for Vicuna-7B, 5120 for 13B).
        grid_size: g, patches per side of the input grid (24 = 336 / 14).
        scale_factor: s, down-sampling factor per side (2, 3 or 4 give 144, 64 or 36 tokens at g=24).
        num_heads: h, attention heads (8 in the official code: head dim 128).
        embed_dim: C, width of queries/keys/values and of the attention; None means ``vision_dim``
            (the official code uses 1024 for both).
        norm_eps: epsilon of the three LayerNorms (1e-6 in the official code).
        attention: ``"sdpa"`` (one batched scaled-dot-product call, the default) or ``"official"`` (the
            official sequence-first ``nn.MultiheadAttention`` call). May be changed after construction.

    Raises:
        ValueError: if ``grid_size % scale_factor != 0``, ``embed_dim % num_heads != 0`` or ``attention``
            is unknown.
    """

    def __init__(
        self,
        vision_dim: int = 1024,
        num_levels: int = 4,
        llm_dim: int = 4096,
        grid_size: int = 24,
        scale_factor: int = 2,
        num_heads: int = 8,
        embed_dim: int | None = None,
        norm_eps: float = 1e-6,
        attention: AttentionImpl = "sdpa",
    ) -> None:
        super().__init__()
        embed_dim = vision_dim if embed_dim is None else embed_dim
        if scale_factor < 1 or grid_size % scale_factor != 0:
            raise ValueError(f"grid_size {grid_size} is not divisible by scale_factor {scale_factor}")
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if attention not in ATTENTION_IMPLS:
            raise ValueError(f"attention must be one of {ATTENTION_IMPLS}, got {attention!r}")
        self.vision_dim = vision_dim
        self.num_levels = num_levels
        self.llm_dim = llm_dim
        self.grid_size = grid_size
        self.scale_factor = scale_factor
        self.out_grid = grid_size // scale_factor
        self.num_queries = self.out_grid**2
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.attention = attention

        self.query_proj = nn.Linear(vision_dim, embed_dim, bias=False)  # official q_proj_1
        self.key_mlp = _two_layer_mlp(num_levels * vision_dim, embed_dim)  # official k_proj_1
        self.value_mlp = _two_layer_mlp(num_levels * vision_dim, embed_dim)  # official v_proj_1
        self.query_norm = nn.LayerNorm(embed_dim, eps=norm_eps)  # official ln_q_1
        self.key_norm = nn.LayerNorm(embed_dim, eps=norm_eps)  # official ln_k_1
        self.value_norm = nn.LayerNorm(embed_dim, eps=norm_eps)  # official ln_v_1
        self.attn = nn.MultiheadAttention(embed_dim, num_heads)  # official clip_attn (sequence-first)
        self.out_mlp = _two_layer_mlp(embed_dim, llm_dim)  # official mlp
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def num_tokens(self, grid_size: int | None = None) -> int:
        """Output tokens for a ``grid_size x grid_size`` patch grid (default: the configured grid)."""
        grid_size = self.grid_size if grid_size is None else grid_size
        if grid_size % self.scale_factor != 0:
            raise ValueError(f"grid_size {grid_size} is not divisible by scale_factor {self.scale_factor}")
        return (grid_size // self.scale_factor) ** 2

    def point_queries(self, x: torch.Tensor) -> torch.Tensor:
        """Coarse point queries: bilinear down-sampling of the query layer, computed in float32.

        Args:
            x: (B, N, C_v) query-layer patch tokens, row-major over the g x g grid, any float dtype.

        Returns:
            (B, M, C_v) in ``x.dtype`` (the interpolation itself runs in float32, as in the official code).
        """
        batch = x.shape[0]
        grid = x.reshape(batch, self.grid_size, self.grid_size, -1).float().permute(0, 3, 1, 2)
        coarse = F.interpolate(
            grid, size=(self.out_grid, self.out_grid), mode="bilinear", align_corners=False
        )
        return coarse.permute(0, 2, 3, 1).reshape(batch, self.num_queries, -1).to(x.dtype)

    def forward(self, x: torch.Tensor, x_multi: torch.Tensor) -> torch.Tensor:
        """Pack ``N`` patch tokens into ``M`` LLM tokens.

        Args:
            x: (B, N, C_v) query layer (the penultimate ViT layer), N = grid_size**2.
            x_multi: (B, N, L*C_v) multi-level features (layers concatenated along channels).

        Returns:
            (B, M, H) with M = (grid_size // scale_factor)**2, tokens in row-major order of the G x G grid.
        """
        self._check_inputs(x, x_multi)
        key = self.key_norm(self.key_mlp(x_multi))  # (B, N, C)
        value = self.value_norm(self.value_mlp(x_multi))  # (B, N, C)
        query = self.query_norm(self.query_proj(self.point_queries(x)))  # (B, M, C)
        if self.attention == "sdpa":
            packed = self._window_attention_sdpa(query, key, value)
        elif self.attention == "official":
            packed = self._window_attention_official(query, key, value)
        else:
            raise ValueError(f"attention must be one of {ATTENTION_IMPLS}, got {self.attention!r}")
        return self.out_mlp(packed)

    def from_concatenated(self, features: torch.Tensor) -> torch.Tensor:
        """``forward`` on concatenated multi-level features (B, N, L*C_v); the last C_v channels are x."""
        return self(*split_concatenated(features, self.vision_dim))

    def _window_attention_sdpa(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor
    ) -> torch.Tensor:
        """Batched windowed attention: (B*M) independent problems of 1 query and S keys, h heads each."""
        batch, num_queries, channels = query.shape
        heads, head_dim, window = self.num_heads, channels // self.num_heads, self.scale_factor**2
        w_q, w_k, w_v = self.attn.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.attn.in_proj_bias.chunk(3)
        # Projecting before the regrouping is the same per-token linear map and needs one reshape less.
        q = F.linear(query, w_q, b_q).reshape(batch * num_queries, 1, heads, head_dim).transpose(1, 2)
        k = window_partition(F.linear(key, w_k, b_k), self.grid_size, self.scale_factor)
        v = window_partition(F.linear(value, w_v, b_v), self.grid_size, self.scale_factor)
        k = k.reshape(batch * num_queries, window, heads, head_dim).transpose(1, 2)  # (B*M, h, S, d)
        v = v.reshape(batch * num_queries, window, heads, head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)  # (B*M, h, 1, d)
        return self.attn.out_proj(out.reshape(batch, num_queries, channels))

    def _window_attention_official(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor
    ) -> torch.Tensor:
        """The official call: sequence-first ``nn.MultiheadAttention`` with the windows as the batch axis."""
        batch, num_queries, channels = query.shape
        window = self.scale_factor**2
        q = query.reshape(1, batch * num_queries, channels)  # (1, B*M, C)
        k = window_partition(key, self.grid_size, self.scale_factor).reshape(
            batch * num_queries, window, channels
        )
        v = window_partition(value, self.grid_size, self.scale_factor).reshape(
            batch * num_queries, window, channels
        )
        out = self.attn(q, k.transpose(0, 1), v.transpose(0, 1))[0]  # (1, B*M, C); need_weights as official
        return out.reshape(batch, num_queries, channels)

    def _check_inputs(self, x: torch.Tensor, x_multi: torch.Tensor) -> None:
        num_patches = self.grid_size**2
        expected_x = (num_patches, self.vision_dim)
        expected_multi = (num_patches, self.num_levels * self.vision_dim)
        if x.ndim != 3 or tuple(x.shape[1:]) != expected_x:
            raise ValueError(f"x must have shape (B, {expected_x[0]}, {expected_x[1]}), got {tuple(x.shape)}")
        if x_multi.ndim != 3 or tuple(x_multi.shape[1:]) != expected_multi or x_multi.shape[0] != x.shape[0]:
            raise ValueError(
                f"x_multi must have shape ({x.shape[0]}, {expected_multi[0]}, {expected_multi[1]}), "
                f"got {tuple(x_multi.shape)}"
            )

    def extra_repr(self) -> str:
        return (
            f"grid={self.grid_size}, scale_factor={self.scale_factor}, tokens={self.num_queries}, "
            f"levels={self.num_levels}, attention={self.attention!r}"
        )
