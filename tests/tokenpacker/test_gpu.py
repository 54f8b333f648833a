"""CUDA checks (``make test-gpu``): the real-width projector in bf16 on the GPU (spec §10 smoke test)."""

import pytest
import torch

from tokenpacker import TokenPacker, build_projector

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("scale_factor", [2, 3, 4])
def test_real_width_bf16_forward_backward_and_attention_paths_agree(scale_factor):
    torch.manual_seed(0)
    cpu = TokenPacker(scale_factor=scale_factor)  # 1024 / 4096 -> 4096, grid 24, 8 heads
    x = torch.randn(4, 576, 1024)
    x_multi = torch.randn(4, 576, 4096)
    with torch.no_grad():
        reference = cpu(x, x_multi)
    packer = TokenPacker(scale_factor=scale_factor).cuda()
    packer.load_state_dict(cpu.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(packer(x.cuda(), x_multi.cuda()).cpu(), reference, rtol=1e-3, atol=1e-4)

    packer = packer.to(torch.bfloat16)
    xb = x.cuda().bfloat16().requires_grad_(True)
    outputs = {}
    for attention in ("sdpa", "official"):
        packer.attention = attention
        out = packer(xb, x_multi.cuda().bfloat16())
        assert out.shape == (4, (24 // scale_factor) ** 2, 4096) and out.dtype == torch.bfloat16
        outputs[attention] = out.float()
    torch.testing.assert_close(outputs["sdpa"], outputs["official"], rtol=0.05, atol=0.02)
    torch.testing.assert_close(outputs["sdpa"].cpu(), reference, rtol=0.1, atol=0.05)
    outputs["sdpa"].square().mean().backward()
    assert torch.isfinite(xb.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in packer.parameters())


@pytest.mark.parametrize("name", ["mlp", "avgpool", "resampler", "pixel_shuffle", "c_abstractor", "ldp_v2"])
def test_baselines_run_in_bf16_on_cuda(name):
    projector = build_projector(name, vision_dim=1024, llm_dim=4096, grid_size=24, scale_factor=2)
    projector = projector.cuda().to(torch.bfloat16)
    x = torch.randn(2, 576, 1024, device="cuda", dtype=torch.bfloat16)
    out = projector(x)
    assert out.shape == (2, projector.num_tokens(24), 4096) and torch.isfinite(out.float()).all()
    out.float().mean().backward()
