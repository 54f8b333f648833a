"""On a CUDA device, APro's terms (through the vlzoo.ops CUDA kernels) equal their CPU values (`make test-gpu`)."""

import pytest
import torch

from apro_affinity.apro_terms import apro_box_terms, apro_semantic_terms

pytestmark = pytest.mark.gpu


@pytest.fixture
def cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    return torch.device("cuda")


def test_box_and_semantic_terms_match_the_cpu(cuda):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(3, 3, 40, 40, generator=g)
    probs = torch.rand(5, 40, 40, generator=g)
    box = torch.zeros(5, 40, 40)
    box[:, 5:30, 8:35] = 1
    index = torch.tensor([0, 0, 1, 2, 2])
    kwargs = dict(zeta_gl=0.03, zeta_gh=0.03, kernel_size=5, zeta_s=0.15, iterations=20)
    for normalize, size in (("instance", None), ("total", (24, 24))):
        cpu = apro_box_terms(probs, box, images, index, normalize=normalize, global_size=size, **kwargs)
        gpu = apro_box_terms(probs.to(cuda), box.to(cuda), images.to(cuda), index.to(cuda), normalize=normalize,
                             global_size=size, **kwargs)
        for key in cpu:
            assert torch.allclose(cpu[key], gpu[key].cpu(), atol=1e-5), (normalize, key)
    soft = torch.rand(2, 4, 32, 32, generator=g).softmax(1)
    unlabeled = torch.rand(2, 32, 32, generator=g) > 0.3
    cpu = apro_semantic_terms(soft, images[:2, :, :32, :32], unlabeled, **kwargs)
    gpu = apro_semantic_terms(soft.to(cuda), images[:2, :, :32, :32].to(cuda), unlabeled.to(cuda), **kwargs)
    for key in cpu:
        assert torch.allclose(cpu[key], gpu[key].cpu(), atol=1e-5), key
