"""The projectors of TokenPacker's comparison table (arXiv 2407.02392, Tab. 3; spec §7.3), one interface.

Every projector maps vision patch tokens to LLM tokens::

    forward(x, x_multi=None) -> (B, M, H)
        x        (B, N, C_v)    the query layer (penultimate ViT layer), N = g*g, row-major patch grid
        x_multi  (B, N, L*C_v)  multi-level features; only TokenPacker uses them, the baselines ignore them
    num_tokens(grid_size) -> M
    from_concatenated(features (B, N, L*C_v)) -> (B, M, H)   x = the last C_v channels

Shape shorthand: g = grid_size, s = scale_factor, G = g // s, M = G*G (144 at g=24, s=2), H = llm_dim.

The baselines, each as described in its own paper (the TokenPacker paper gives no hyper-parameters for them):

=================  ===========================================================================  =========
name               architecture                                                                  tokens
=================  ===========================================================================  =========
``mlp``            LLaVA-1.5 ``mlp2x_gelu`` (Liu et al. 2023, "Improved Baselines", §3.1): Linear,  g*g
                   GELU, Linear on every patch token
``avgpool``        s x s average pooling of the patch grid, then ``mlp2x_gelu`` (TokenPacker Tab. 5  G*G
                   "Baseline")
``resampler``      Perceiver resampler as in Qwen-VL (Bai et al. 2023, §2.1; Flamingo §3.1.1): G*G   G*G
                   learnable queries, one cross-attention layer, 2D sin-cos positions on queries
                   and keys, LayerNorm, linear projection
``pixel_shuffle``  InternVL 1.5 (Chen et al. 2024, §3.1): space-to-depth by s (each s x s window     G*G
                   concatenated along channels), LayerNorm, Linear, GELU, Linear
``c_abstractor``   Honeybee C-Abstractor (Cha et al. 2024, §3.2): learnable position embedding,     G*G
                   ``depth`` ResNet (RegNet bottleneck) blocks, adaptive average pooling to G x G,
                   ``depth`` more blocks, MLP (Linear, SiLU, Linear)
``ldp_v2``         MobileVLM V2 LDP-v2 (Chu et al. 2024, §3.2): MLP (Linear, GELU, Linear), s x s   G*G
                   average pooling, PEG: 3x3 depthwise conv with a residual
``tokenpacker``    :class:`tokenpacker.TokenPacker`                                               G*G
=================  ===========================================================================  =========

Simplifications (to write in the README's "Deviations"): the resampler evaluates the 2D sin-cos key
positions exactly at the key-grid points mapped onto the query grid, where Qwen-VL bicubically resamples its
query-grid table; the resampler, C-Abstractor and LDP-v2 take their down-sampling factor from ``s`` (the
papers fix 256, 144/256 and 144 tokens). Every pooling projector requires ``g % s == 0`` so that all of them
produce the same G*G tokens as TokenPacker.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from tokenpacker.packer import ATTENTION_IMPLS, TokenPacker, split_concatenated, window_partition

__all__ = [
    "ProjectorConfig",
    "VisualProjector",
    "MLPProjector",
    "AvgPoolProjector",
    "PerceiverResampler",
    "PixelShuffleProjector",
    "CAbstractor",
    "LDPv2Projector",
    "PROJECTORS",
    "build_projector",
    "build_projector_from_config",
    "sincos_2d_embedding",
]


def _output_grid(grid_size: int, scale_factor: int) -> int:
    if scale_factor < 1 or grid_size % scale_factor != 0:
        raise ValueError(f"grid_size {grid_size} is not divisible by scale_factor {scale_factor}")
    return grid_size // scale_factor


def _mlp2x_gelu(in_dim: int, out_dim: int) -> nn.Sequential:
    """LLaVA-1.5 ``mlp2x_gelu``: Linear(in, out), GELU, Linear(out, out)."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


class VisualProjector(nn.Module):
    """Base class of the baselines: input checks, grid reshapes and the shared interface.

    Args:
        vision_dim: C_v, width of the query layer.
        llm_dim: H, width of the LLM embeddings.
        grid_size: g, patches per side of the input grid.
        scale_factor: s, down-sampling factor per side (ignored by ``mlp``).
    """

    def __init__(self, vision_dim: int, llm_dim: int, grid_size: int, scale_factor: int) -> None:
        super().__init__()
        self.vision_dim = vision_dim
        self.llm_dim = llm_dim
        self.grid_size = grid_size
        self.scale_factor = scale_factor

    def num_tokens(self, grid_size: int | None = None) -> int:
        """Output tokens M for a ``grid_size x grid_size`` patch grid (default: the configured grid)."""
        grid_size = self.grid_size if grid_size is None else grid_size
        return _output_grid(grid_size, self.scale_factor) ** 2

    def from_concatenated(self, features: torch.Tensor) -> torch.Tensor:
        """``forward`` on concatenated multi-level features (B, N, L*C_v); the last C_v channels are x."""
        return self(*split_concatenated(features, self.vision_dim))

    def _check_input(self, x: torch.Tensor) -> None:
        expected = (self.grid_size**2, self.vision_dim)
        if x.ndim != 3 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"{type(self).__name__}: x must have shape (B, {expected[0]}, {expected[1]}), "
                f"got {tuple(x.shape)}"
            )

    def _to_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, g*g, C) row-major tokens -> (B, C, g, g) feature map."""
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], self.grid_size, self.grid_size)

    @staticmethod
    def _to_tokens(feature_map: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) feature map -> (B, h*w, C) row-major tokens."""
        return feature_map.flatten(2).transpose(1, 2)


class MLPProjector(VisualProjector):
    """LLaVA-1.5 projector: ``mlp2x_gelu`` on all g*g patch tokens, (B, g*g, C_v) -> (B, g*g, H)."""

    def __init__(
        self, vision_dim: int = 1024, llm_dim: int = 4096, grid_size: int = 24, scale_factor: int = 1
    ) -> None:
        super().__init__(vision_dim, llm_dim, grid_size, scale_factor)
        self.mlp = _mlp2x_gelu(vision_dim, llm_dim)

    def num_tokens(self, grid_size: int | None = None) -> int:
        grid_size = self.grid_size if grid_size is None else grid_size
        return grid_size**2

    def forward(self, x: torch.Tensor, x_multi: torch.Tensor | None = None) -> torch.Tensor:
        self._check_input(x)
        return self.mlp(x)


class AvgPoolProjector(VisualProjector):
    """s x s average pooling, then ``mlp2x_gelu``: (B, g*g, C_v) -> (B, G*G, H) (TokenPacker Tab. 5)."""

    def __init__(
        self, vision_dim: int = 1024, llm_dim: int = 4096, grid_size: int = 24, scale_factor: int = 2
    ) -> None:
        super().__init__(vision_dim, llm_dim, grid_size, scale_factor)
        _output_grid(grid_size, scale_factor)
        self.mlp = _mlp2x_gelu(vision_dim, llm_dim)

    def forward(self, x: torch.Tensor, x_multi: torch.Tensor | None = None) -> torch.Tensor:
        self._check_input(x)
        pooled = F.avg_pool2d(self._to_map(x), kernel_size=self.scale_factor)  # (B, C_v, G, G)
        return self.mlp(self._to_tokens(pooled))


def sincos_2d_embedding(dim: int, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """2D sin-cos position embedding (MAE / Qwen-VL layout) at possibly fractional grid coordinates.

    The first half of the channels encodes ``cols``, the second half ``rows`` (as MAE's
    ``get_2d_sincos_pos_embed``, whose first meshgrid output is the column index); each half is
    ``[sin(p * w_k), cos(p * w_k)]`` with ``w_k = 10000^(-k / (dim/4))``, k = 0..dim/4-1.

    Args:
        dim: embedding width, a multiple of 4.
        rows: (P,) row coordinates.
        cols: (P,) column coordinates.

    Returns:
        (P, dim) float32.
    """
    if dim % 4 != 0:
        raise ValueError(f"sin-cos 2D embedding needs dim % 4 == 0, got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)

    def one_axis(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.to(torch.float64)[:, None] * omega[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([one_axis(cols), one_axis(rows)], dim=1).float()


def _grid_coordinates(grid: int, target_grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row/col coordinates of a row-major ``grid x grid`` lattice, expressed in ``target_grid`` units.

    Uses pixel-centre alignment, ``p' = (p + 0.5) * target / grid - 0.5``, the geometry of resampling a
    ``target_grid`` table to ``grid`` (align_corners=False).
    """
    axis = (torch.arange(grid, dtype=torch.float64) + 0.5) * (target_grid / grid) - 0.5
    rows, cols = torch.meshgrid(axis, axis, indexing="ij")
    return rows.reshape(-1), cols.reshape(-1)


class PerceiverResampler(VisualProjector):
    """Qwen-VL-style perceiver resampler: G*G learnable queries cross-attend to all g*g patch tokens.

    ``out = LN_post(MHA(LN_q(queries) + pos_q, LN_kv(W_kv x) + pos_k, LN_kv(W_kv x))) W_out``, then the
    output is in the LLM width. ``pos_q``/``pos_k`` are fixed 2D sin-cos embeddings of the query grid and of
    the key grid mapped onto the query grid. (B, g*g, C_v) -> (B, G*G, H).

    Args:
        vision_dim, llm_dim, grid_size, scale_factor: see :class:`VisualProjector`.
        num_heads: attention heads.
        resampler_dim: width of the queries and of the attention; None means ``llm_dim`` (Qwen-VL attends
            in the LLM width, 4096 with 32 heads).
    """

    def __init__(
        self,
        vision_dim: int = 1024,
        llm_dim: int = 4096,
        grid_size: int = 24,
        scale_factor: int = 2,
        num_heads: int = 8,
        resampler_dim: int | None = None,
    ) -> None:
        super().__init__(vision_dim, llm_dim, grid_size, scale_factor)
        out_grid = _output_grid(grid_size, scale_factor)
        width = llm_dim if resampler_dim is None else resampler_dim
        if width % num_heads != 0:
            raise ValueError(f"resampler width {width} is not divisible by num_heads {num_heads}")
        self.queries = nn.Parameter(torch.empty(out_grid * out_grid, width))
        nn.init.trunc_normal_(self.queries, std=0.02)
        self.kv_proj = nn.Linear(vision_dim, width, bias=False) if vision_dim != width else nn.Identity()
        self.norm_q = nn.LayerNorm(width, eps=1e-6)
        self.norm_kv = nn.LayerNorm(width, eps=1e-6)
        self.attn = nn.MultiheadAttention(width, num_heads, batch_first=True)
        self.norm_post = nn.LayerNorm(width, eps=1e-6)
        self.out_proj = nn.Linear(width, llm_dim, bias=False)
        nn.init.normal_(self.out_proj.weight, std=width**-0.5)  # Qwen-VL: proj = width^-0.5 * randn
        q_rows, q_cols = _grid_coordinates(out_grid, out_grid)
        k_rows, k_cols = _grid_coordinates(grid_size, out_grid)
        self.register_buffer("query_pos", sincos_2d_embedding(width, q_rows, q_cols), persistent=False)
        self.register_buffer("key_pos", sincos_2d_embedding(width, k_rows, k_cols), persistent=False)

    def forward(self, x: torch.Tensor, x_multi: torch.Tensor | None = None) -> torch.Tensor:
        self._check_input(x)
        kv = self.norm_kv(self.kv_proj(x))  # (B, N, W)
        queries = (self.norm_q(self.queries) + self.query_pos).to(kv.dtype).expand(x.shape[0], -1, -1)
        keys = kv + self.key_pos.to(kv.dtype)
        out, _ = self.attn(queries, keys, kv, need_weights=False)  # (B, M, W)
        return self.out_proj(self.norm_post(out))


class PixelShuffleProjector(VisualProjector):
    """InternVL pixel shuffle (space-to-depth) + MLP: (B, g*g, C_v) -> (B, G*G, s*s*C_v) -> (B, G*G, H).

    Output token i concatenates the s*s patches of window i in row-major order (InternVL's
    ``pixel_shuffle(x, 0.5)`` channel order), then ``LayerNorm, Linear, GELU, Linear`` (InternVL ``mlp1``).
    """

    def __init__(
        self, vision_dim: int = 1024, llm_dim: int = 4096, grid_size: int = 24, scale_factor: int = 2
    ) -> None:
        super().__init__(vision_dim, llm_dim, grid_size, scale_factor)
        _output_grid(grid_size, scale_factor)
        stacked = vision_dim * scale_factor**2
        self.mlp = nn.Sequential(
            nn.LayerNorm(stacked), nn.Linear(stacked, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim)
        )

    def forward(self, x: torch.Tensor, x_multi: torch.Tensor | None = None) -> torch.Tensor:
        self._check_input(x)
        windows = window_partition(x, self.grid_size, self.scale_factor)  # (B, M, s*s, C_v)
        return self.mlp(windows.flatten(2))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of a (B, C, h, w) map (timm's ``LayerNorm2d``, eps 1e-6)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation gate: x * sigmoid(W2 act(W1 mean_hw(x))), (B, C, h, w) -> (B, C, h, w)."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = nn.SiLU()
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True)))).sigmoid()


class ResBottleneck(nn.Module):
    """The RegNet bottleneck block Honeybee stacks (timm ``RegStage`` defaults, SiLU, LayerNorm2d).

    1x1 conv, LN, SiLU -> 3x3 depthwise conv, LN, SiLU -> SE (reduction = round(in/4)) -> 1x1 conv, LN;
    plus the shortcut (identity, or 1x1 conv + LN when the width changes), then SiLU. Convolutions have no
    bias. (B, C_in, h, w) -> (B, C_out, h, w).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), LayerNorm2d(out_channels), nn.SiLU()
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, padding=1, groups=out_channels, bias=False),
            LayerNorm2d(out_channels),
            nn.SiLU(),
        )
        self.se = SqueezeExcite(out_channels, max(1, round(in_channels * 0.25)))
        self.conv3 = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 1, bias=False), LayerNorm2d(out_channels)
        )
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), LayerNorm2d(out_channels))
        )
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv3(self.se(self.conv2(self.conv1(x)))) + self.shortcut(x))


class CAbstractor(VisualProjector):
    """Honeybee C-Abstractor: ResNet blocks, adaptive average pooling to G x G, ResNet blocks, MLP.

    ``x + pos`` (learnable, trunc_normal 0.02) -> ``depth`` x ResBottleneck(C_v -> D) -> AdaptiveAvgPool(G)
    -> ``depth`` x ResBottleneck(D -> D) -> Linear(D, H), SiLU, Linear(H, H). (B, g*g, C_v) -> (B, G*G, H).

    Args:
        vision_dim, llm_dim, grid_size, scale_factor: see :class:`VisualProjector`.
        abstractor_depth: ResNet blocks before and after the pooling (Honeybee: 3).
        abstractor_dim: D, the width of the convolutional stages; None means ``vision_dim`` (Honeybee 1024).
    """

    def __init__(
        self,
        vision_dim: int = 1024,
        llm_dim: int = 4096,
        grid_size: int = 24,
        scale_factor: int = 2,
        abstractor_depth: int = 3,
        abstractor_dim: int | None = None,
    ) -> None:
        super().__init__(vision_dim, llm_dim, grid_size, scale_factor)
        out_grid = _output_grid(grid_size, scale_factor)
        if abstractor_depth < 1:
            raise ValueError(f"abstractor_depth must be >= 1, got {abstractor_depth}")
        width = vision_dim if abstractor_dim is None else abstractor_dim
        self.pos_embed = nn.Parameter(torch.empty(1, grid_size * grid_size, vision_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        first = [ResBottleneck(vision_dim if i == 0 else width, width) for i in range(abstractor_depth)]
        self.stage1 = nn.Sequential(*first)
        self.pool = nn.AdaptiveAvgPool2d((out_grid, out_grid))
        self.stage2 = nn.Sequential(*[ResBottleneck(width, width) for _ in range(abstractor_depth)])
        self.readout = nn.Sequential(nn.Linear(width, llm_dim), nn.SiLU(), nn.Linear(llm_dim, llm_dim))

    def forward(self, x: torch.Tensor, x_multi: torch.Tensor | None = None) -> torch.Tensor:
        self._check_input(x)
        feature_map = self._to_map(x + self.pos_embed.to(x.dtype))  # (B, C_v, g, g)
        feature_map = self.stage2(self.pool(self.stage1(feature_map)))  # (B, D, G, G)
        return self.readout(self._to_tokens(feature_map))


class LDPv2Projector(VisualProjector):
    """MobileVLM V2 LDP-v2: MLP, s x s average pooling, PEG (3x3 depthwise conv + residual).

    (B, g*g, C_v) -MLP-> (B, g*g, H) -pool-> (B, H, G, G) -> y + DWConv3x3(y) -> (B, G*G, H).
    """

    def __init__(
        self, vision_dim: int = 1024, llm_dim: int = 4096, grid_size: int = 24, scale_factor: int = 2
    ) -> None:
        super().__init__(vision_dim, llm_dim, grid_size, scale_factor)
        self.out_grid = _output_grid(grid_size, scale_factor)
        self.mlp = _mlp2x_gelu(vision_dim, llm_dim)
        self.peg = nn.Conv2d(llm_dim, llm_dim, 3, padding=1, groups=llm_dim, bias=True)

    def forward(self, x: torch.Tensor, x_multi: torch.Tensor | None = None) -> torch.Tensor:
        self._check_input(x)
        hidden = self.mlp(x)  # (B, N, H)
        pooled = F.adaptive_avg_pool2d(self._to_map(hidden), (self.out_grid, self.out_grid))  # (B, H, G, G)
        return self._to_tokens(pooled + self.peg(pooled))


PROJECTORS: dict[str, type[nn.Module]] = {
    "mlp": MLPProjector,
    "avgpool": AvgPoolProjector,
    "resampler": PerceiverResampler,
    "pixel_shuffle": PixelShuffleProjector,
    "c_abstractor": CAbstractor,
    "ldp_v2": LDPv2Projector,
    "tokenpacker": TokenPacker,
}
"""Projector name (the value of ``ProjectorConfig.name``) -> class."""

ProjectorName = Literal[
    "mlp", "avgpool", "resampler", "pixel_shuffle", "c_abstractor", "ldp_v2", "tokenpacker"
]


@dataclass
class ProjectorConfig:
    """Which projector to build and its sizes; defaults are the official TokenPacker-7B (s=2) settings."""

    name: ProjectorName = "tokenpacker"
    """Projector type, a key of ``PROJECTORS``."""
    vision_dim: int = 1024
    """C_v: width of one vision layer (CLIP ViT-L: 1024)."""
    feature_layers: tuple[int, ...] = (12, 16, 22, 23)
    """HF ``hidden_states`` indices the vision tower concatenates (in this order) into the (B, N, L*C_v)
    projector input; the last one is the query layer x (23 = the penultimate block of 24). TokenPacker's
    ``num_levels`` is ``len(feature_layers)``; the baselines use only the query layer."""
    llm_dim: int = 4096
    """H: LLM embedding width (Vicuna-7B 4096, 13B 5120)."""
    grid_size: int = 24
    """g: vision patches per side (image_size / patch_size = 336 / 14)."""
    scale_factor: int = 2
    """s: down-sampling per side; 2, 3, 4 give 144, 64, 36 tokens at g=24. Must divide grid_size."""
    num_heads: int = 8
    """Attention heads of TokenPacker (official: 1024 // 128 = 8) and of the resampler."""
    embed_dim: int | None = None
    """TokenPacker attention width C; None means vision_dim (official: 1024)."""
    norm_eps: float = 1e-6
    """Epsilon of TokenPacker's LayerNorms (official: 1e-6)."""
    attention: str = "sdpa"
    """TokenPacker windowed attention: "sdpa" (batched) or "official" (the nn.MultiheadAttention call)."""
    resampler_dim: int | None = None
    """Resampler query/attention width; None means llm_dim (Qwen-VL)."""
    abstractor_depth: int = 3
    """C-Abstractor ResNet blocks before and after the pooling (Honeybee: 3)."""
    abstractor_dim: int | None = None
    """C-Abstractor convolution width; None means vision_dim (Honeybee: 1024)."""

    def __post_init__(self) -> None:
        if self.name not in PROJECTORS:
            raise ValueError(f"ProjectorConfig.name must be one of {sorted(PROJECTORS)}, got {self.name!r}")
        if self.attention not in ATTENTION_IMPLS:
            raise ValueError(
                f"ProjectorConfig.attention must be one of {ATTENTION_IMPLS}, got {self.attention!r}"
            )
        if not self.feature_layers:
            raise ValueError("ProjectorConfig.feature_layers must name at least one layer")
        self.feature_layers = tuple(self.feature_layers)
        if self.name != "mlp":
            _output_grid(self.grid_size, self.scale_factor)

    @property
    def num_levels(self) -> int:
        """L, the number of concatenated vision layers."""
        return len(self.feature_layers)

    def projector_kwargs(self) -> dict[str, Any]:
        """The constructor arguments of the chosen projector class taken from this config."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name"}
        values["num_levels"] = self.num_levels
        accepted = inspect.signature(PROJECTORS[self.name].__init__).parameters
        return {k: v for k, v in values.items() if k in accepted}


def build_projector(name: str, **kwargs: Any) -> nn.Module:
    """Build the projector registered as ``name`` in ``PROJECTORS`` with constructor ``kwargs``.

    Raises:
        ValueError: for an unknown name (the message lists the known names).
    """
    if name not in PROJECTORS:
        raise ValueError(f"unknown projector {name!r}; known: {sorted(PROJECTORS)}")
    return PROJECTORS[name](**kwargs)


def build_projector_from_config(config: ProjectorConfig) -> nn.Module:
    """Build ``config.name`` with the config fields its constructor takes (see ``projector_kwargs``)."""
    return build_projector(config.name, **config.projector_kwargs())
