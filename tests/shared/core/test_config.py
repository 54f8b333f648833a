"""vlzoo.config: dataclass defaults <- YAML delta (with _base_) <- dotted CLI overrides."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from vlzoo.config import (
    ConfigError,
    apply_overrides,
    config_to_dict,
    load_config,
    parse_override,
    save_config,
)


@dataclass
class OptimConfig:
    lr: float = 1e-3
    """Peak learning rate."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam betas."""


@dataclass
class ModelConfig:
    name: str = "tiny"
    """Model name."""
    layers: list[int] = field(default_factory=lambda: [12, 16, 22, 23])
    """Tapped layers."""
    projector: Literal["mlp", "tokenpacker"] = "mlp"
    """Projector type."""
    weights: Path | None = None
    """Optional local weights file."""


@dataclass
class ExperimentConfig:
    seed: int = 0
    """Seed."""
    use_lora: bool = False
    """LoRA on/off."""
    train: OptimConfig = field(default_factory=OptimConfig)
    """Optimiser."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Model."""

    def __post_init__(self):
        if self.seed < 0:
            raise ValueError("seed must be >= 0")


def write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults():
    cfg = load_config(ExperimentConfig)
    assert cfg == ExperimentConfig()


def test_yaml_delta_and_overrides(tmp_path):
    f = write(tmp_path / "c.yaml", {"seed": 3, "model": {"projector": "tokenpacker"}})
    cfg = load_config(ExperimentConfig, f, ["train.lr=2e-5", "model.layers=[1,2]", "use_lora=true"])
    assert cfg.seed == 3
    assert cfg.model.projector == "tokenpacker"
    assert cfg.model.name == "tiny"  # untouched default survives a partial section
    assert cfg.train.lr == pytest.approx(2e-5) and isinstance(cfg.train.lr, float)
    assert cfg.model.layers == [1, 2]
    assert cfg.use_lora is True
    assert cfg.train.betas == (0.9, 0.999)


def test_base_inheritance(tmp_path):
    write(tmp_path / "base.yaml", {"seed": 1, "train": {"lr": 0.5}})
    f = write(tmp_path / "child.yaml", {"_base_": "base.yaml", "train": {"lr": 0.25}})
    cfg = load_config(ExperimentConfig, f)
    assert (cfg.seed, cfg.train.lr) == (1, 0.25)


def test_base_cycle(tmp_path):
    write(tmp_path / "a.yaml", {"_base_": "b.yaml"})
    write(tmp_path / "b.yaml", {"_base_": "a.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(ExperimentConfig, tmp_path / "a.yaml")


@pytest.mark.parametrize(
    "delta, message",
    [
        ({"sed": 1}, "unknown key"),
        ({"model": {"projector": "resampler"}}, "not one of"),
        ({"train": {"lr": "fast"}}, "expected a number"),
        ({"seed": 1.5}, "expected an integer"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"train": 3}, "expected a mapping"),
        ({"train": {"betas": [0.9]}}, "expected 2 items"),
    ],
)
def test_bad_yaml_names_file_and_key(tmp_path, delta, message):
    f = write(tmp_path / "bad.yaml", delta)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(ExperimentConfig, f)
    assert "bad.yaml" in str(err.value)


def test_bad_overrides():
    cfg = ExperimentConfig()
    with pytest.raises(ConfigError, match="unknown key 'lrr'"):
        apply_overrides(cfg, ["train.lrr=1"])
    with pytest.raises(ConfigError, match="not of the form"):
        apply_overrides(cfg, ["train.lr"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides(cfg, ["seed.x=1"])


def test_missing_file_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(ExperimentConfig, tmp_path / "nope.yaml")
    (tmp_path / "broken.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(ExperimentConfig, tmp_path / "broken.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(ExperimentConfig, tmp_path / "list.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(ExperimentConfig, None, ["model.weights=/tmp/w.bin", "train.lr=0.1"])
    for name in ("resolved.yaml", "resolved.json"):
        path = save_config(cfg, tmp_path / name)
        text = path.read_text()
        data = yaml.safe_load(text)  # JSON is YAML
        assert load_config(ExperimentConfig, None, []) != cfg
        rebuilt = load_config(ExperimentConfig, path)
        assert rebuilt == cfg
        assert data["model"]["weights"] == "/tmp/w.bin"
    assert config_to_dict(cfg)["train"]["betas"] == [0.9, 0.999]


def test_parse_override_values():
    assert parse_override("a.b=null") == (["a", "b"], None)
    assert parse_override("x=[1, 2]") == (["x"], [1, 2])
    assert parse_override("--x=hello") == (["x"], "hello")
