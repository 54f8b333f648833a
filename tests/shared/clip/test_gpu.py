"""CUDA checks (``make test-gpu``): taps, reduced precision and the HF tower on the GPU match the CPU."""

import pytest
import torch

import vlzoo.clip as vc

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_taps_on_cuda_match_cpu_in_fp32_and_bf16():
    torch.manual_seed(0)
    cpu = vc.create_clip("vlzoo-tiny-vit")
    images = torch.randn(2, 3, 96, 96)
    ref = cpu.vision_hidden_states(images, [0, 3, -1], include_cls=True)
    gpu = vc.create_clip("vlzoo-tiny-vit", device="cuda")
    gpu.model.load_state_dict(cpu.model.state_dict())
    out = gpu.vision_hidden_states(images.cuda(), [0, 3, -1], include_cls=True)
    for a, b in zip(out, ref):
        assert a.is_cuda
        torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-4)
    low = vc.create_clip("vlzoo-tiny-vit", device="cuda", precision="bf16")
    low.model.load_state_dict(cpu.model.state_dict())
    out16 = low.vision_hidden_states(images.cuda(), -1, include_cls=True)  # float32 images are cast
    assert out16.dtype == torch.bfloat16
    torch.testing.assert_close(out16.float().cpu(), ref[-1], rtol=0.1, atol=0.1)


def test_convnext_stages_and_label_embeddings_on_cuda():
    torch.manual_seed(1)
    cpu = vc.create_clip("vlzoo-tiny-convnext")
    gpu = vc.create_clip("vlzoo-tiny-convnext", device="cuda")
    gpu.model.load_state_dict(cpu.model.state_dict())
    images = torch.randn(2, 3, 128, 128)
    ref = cpu.convnext_stages(images)
    for name, value in gpu.convnext_stages(images.cuda()).items():
        torch.testing.assert_close(value.cpu(), ref[name], rtol=1e-4, atol=1e-4)
    labels = vc.encode_labels(gpu, ["cat", "dog"], "simple", cache=False)
    assert labels.is_cuda
    torch.testing.assert_close(
        labels.cpu(), vc.encode_labels(cpu, ["cat", "dog"], "simple", cache=False), rtol=1e-4, atol=1e-4
    )


def test_hf_tower_on_cuda_matches_open_clip(tmp_path):
    torch.manual_seed(2)
    model = vc.create_clip("vlzoo-tiny-vit")
    vc.save_hf_clip(model, tmp_path / "hf")
    hf = vc.load_hf_clip(tmp_path / "hf", vision_only=True, device="cuda")
    images = torch.randn(2, 3, 96, 96)
    torch.testing.assert_close(
        hf.vision_hidden_states(images.cuda(), -2).cpu(),
        model.vision_hidden_states(images, -2),
        rtol=1e-4,
        atol=1e-4,
    )
