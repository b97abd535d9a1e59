"""Shipped hardware specs and model configs: they load, carry sources, and match published figures.

Data files are located through the package (perfmodel.paths), never through the working directory.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from perfmodel.errors import PerfModelError
from perfmodel.paths import HARDWARE_DIR, MODEL_CONFIG_DIR
from perfmodel.specs.hardware import HardwareSpec, list_gpus, load_gpu
from perfmodel.specs.models import list_models, load_model
from tests.synthetic_models import NEW_ARCHITECTURES  # their counts: test_model_architectures

# Every figure a spec carries must say where it came from (a URL, or "assumption").
SOURCED_FIELDS = (
    "peak_tflops",
    "hbm_capacity_gb",
    "hbm_bandwidth_tbps",
    "link_bandwidth_gbps",
    "tdp_w",
    "price_per_gpu_hour_usd",
    "max_gpus_per_node",
)

EXPECTED_GPUS = {
    "h100-sxm",
    "h100-pcie",
    "h200",
    "a100-80gb",
    "a100-40gb",
    "rtx4090",
    "l40s",
    "b200",
    "mi300x",
    "cpu-generic",
}

EXPECTED_MODELS = {
    "Llama-3.2-1B",
    "Llama-3.2-3B",
    "Llama-3.1-8B",
    "Llama-3.1-70B",
    "Llama-3.1-405B",
    "Mistral-7B-v0.3",
    "Qwen2.5-7B",
    "Qwen2.5-32B",
    "Qwen2.5-72B",
    "Mixtral-8x7B",
}


# --- hardware ------------------------------------------------------------------------------


def test_expected_gpus_are_shipped():
    assert EXPECTED_GPUS <= set(list_gpus())


@pytest.mark.parametrize("name", list_gpus())
def test_every_gpu_yaml_loads_with_sources(name):
    spec = load_gpu(name)
    assert isinstance(spec, HardwareSpec)
    assert spec.name == name  # file stem and name field agree
    assert spec.peak_flops("bf16") > 0
    assert spec.hbm_bytes > 0 and spec.hbm_bandwidth > 0
    for field in SOURCED_FIELDS:
        assert spec.sources.get(field, "").strip(), f"{name}: no source for '{field}'"
    # Every source key names a real field, so a typo cannot hide a missing source.
    assert set(spec.sources) <= {f.name for f in dataclasses.fields(HardwareSpec)}


@pytest.mark.parametrize("name", sorted(EXPECTED_GPUS - {"cpu-generic"}))
def test_accelerator_figures_are_plausible(name):
    spec = load_gpu(name)
    # Dense peaks: bf16 between 100 and 3000 TFLOPS, fp8 (if present) at most 2x bf16 (datasheets
    # round each figure separately, hence some slack: L40S lists 362.05 and 733).
    assert 100 <= spec.peak_tflops["bf16"] <= 3000
    if "fp8" in spec.peak_tflops:
        assert spec.peak_tflops["fp8"] <= 2.05 * spec.peak_tflops["bf16"]
    assert 16 <= spec.hbm_capacity_gb <= 300
    assert spec.link_bandwidth_gbps > 0


def test_selected_datasheet_values():
    assert load_gpu("h100-sxm").peak_tflops["bf16"] == pytest.approx(989.4)
    assert load_gpu("h100-pcie").peak_tflops["bf16"] == pytest.approx(756.0)
    assert load_gpu("h200").hbm_bandwidth_tbps == pytest.approx(4.8)
    assert load_gpu("a100-80gb").hbm_bandwidth_tbps == pytest.approx(2.039)
    assert load_gpu("a100-40gb").hbm_bandwidth_tbps == pytest.approx(1.555)
    assert load_gpu("rtx4090").peak_tflops["bf16"] == pytest.approx(165.2)
    assert load_gpu("mi300x").peak_tflops["fp8"] == pytest.approx(2614.9)
    assert load_gpu("b200").peak_tflops["fp4"] == pytest.approx(9000.0)


def test_a100_has_no_fp8_unit_and_falls_back_to_bf16():
    a100 = load_gpu("a100")
    assert "fp8" not in a100.peak_tflops
    assert a100.peak_flops("fp8") == a100.peak_flops("bf16")


def test_pcie_and_cpu_link_kinds():
    assert load_gpu("rtx4090").link_kind == "PCIe"
    assert load_gpu("rtx4090").link_bandwidth_gbps == pytest.approx(32)
    assert load_gpu("h100-pcie").link_bandwidth_gbps == pytest.approx(64)
    cpu = load_gpu("cpu-generic")
    assert cpu.link_kind == "none" and cpu.link_bandwidth_gbps == 0


@pytest.mark.parametrize(
    "alias, canonical",
    [
        ("h100", "h100-sxm"),
        ("H100", "h100-sxm"),
        ("a100", "a100-80gb"),
        ("a100-sxm", "a100-80gb"),
        ("h200-sxm", "h200"),
        ("4090", "rtx4090"),
    ],
)
def test_gpu_aliases_resolve(alias, canonical):
    assert load_gpu(alias).name == canonical


def test_unknown_gpu_suggests_closest_name():
    with pytest.raises(PerfModelError) as info:
        load_gpu("h10")
    message = str(info.value)
    assert "h10" in message
    assert "did you mean" in message and "h100" in message.split("did you mean")[1]


def test_gpu_yaml_path_loads(tmp_path):
    data = yaml.safe_load((HARDWARE_DIR / "h100-sxm.yaml").read_text())
    data["name"] = "my-gpu"
    path = tmp_path / "my-gpu.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_gpu(str(path)).name == "my-gpu"


def test_malformed_gpu_yaml_names_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\npeak_tflops: {bf16: 1\n  nonsense: [\n")
    with pytest.raises(PerfModelError) as info:
        load_gpu(str(path))
    assert "broken.yaml" in str(info.value)


def test_invalid_gpu_field_names_file_and_field(tmp_path):
    data = yaml.safe_load((HARDWARE_DIR / "h100-sxm.yaml").read_text())
    data["hbm_bandwidth_tbps"] = -1
    path = tmp_path / "bad-bandwidth.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PerfModelError) as info:
        load_gpu(str(path))
    message = str(info.value)
    assert "bad-bandwidth.yaml" in message and "hbm_bandwidth_tbps" in message


def test_missing_gpu_field_names_field(tmp_path):
    data = yaml.safe_load((HARDWARE_DIR / "h100-sxm.yaml").read_text())
    del data["tdp_w"]
    path = tmp_path / "no-tdp.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PerfModelError, match="tdp_w"):
        load_gpu(str(path))


def test_node_data_per_gpu():
    # HGX/DGX nodes: 8 GPUs, one NIC per GPU (NDR 400 Gb/s = 50 GB/s; A100: HDR 200 Gb/s)
    expected = {"h100-sxm": 50, "h200": 50, "b200": 50, "mi300x": 50, "a100-80gb": 25}
    for name, gbps in expected.items():
        spec = load_gpu(name)
        assert spec.max_gpus_per_node == 8 and spec.inter_node_bandwidth_gbps == gbps
        assert spec.inter_node_bandwidth == gbps * 1e9
        assert spec.sources["inter_node_bandwidth_gbps"].startswith("http")
        # scale-up link is faster than scale-out per GPU
        assert spec.link_bandwidth > spec.inter_node_bandwidth
    assert not load_gpu("rtx4090").has_node_data and not load_gpu("cpu").has_node_data


@pytest.mark.parametrize(
    ("drop", "match"),
    [
        ("inter_node_latency_us", "give both inter_node_bandwidth_gbps and inter_node_latency_us"),
        ("sources.inter_node_bandwidth_gbps", "'inter_node_bandwidth_gbps' needs a source"),
    ],
)
def test_node_data_is_complete_and_sourced(tmp_path, drop, match):
    data = yaml.safe_load((HARDWARE_DIR / "h100-sxm.yaml").read_text())
    if drop.startswith("sources."):
        del data["sources"][drop.split(".", 1)[1]]
    else:
        del data[drop]
    path = tmp_path / "partial-node.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PerfModelError, match=match):
        load_gpu(str(path))


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"memory_bytes": 1}, "memory_bytes", "unknown field"),
        ({"tdp_w": True}, "tdp_w", "must be a number"),
        ({"tdp_w": "lots"}, "tdp_w", "must be a number"),
        ({"price_per_gpu_hour_usd": 0}, "price_per_gpu_hour_usd", "> 0"),
        ({"link_latency_us": -1}, "link_latency_us", ">= 0"),
        ({"max_gpus_per_node": 2.5}, "max_gpus_per_node", "whole number"),
        ({"aliases": ["h1", 4090]}, "aliases", "list of names"),
        ({"peak_tflops": {"fp8": 10}}, "peak_tflops", "bf16 peak is required"),
        ({"peak_tflops": {"bf16": 1, "fp7": 2}}, "peak_tflops", "unknown dtype"),
        ({"name": 7}, "name", "must be text"),
    ],
)
def test_each_invalid_gpu_field_is_named_with_what_is_accepted(tmp_path, change, field, says):
    data = yaml.safe_load((HARDWARE_DIR / "h100-sxm.yaml").read_text())
    data.update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PerfModelError) as info:
        load_gpu(str(path))
    assert str(info.value).startswith(f"{path}: field '{field}': ")
    assert says in str(info.value)


def test_gpu_yaml_numbers_become_floats_and_counts_ints():
    spec = load_gpu("h100-sxm")  # the YAML writes tdp_w: 700 and max_gpus_per_node: 8
    assert type(spec.tdp_w) is float and spec.tdp_w == 700.0
    assert type(spec.link_bandwidth_gbps) is float
    assert type(spec.max_gpus_per_node) is int and spec.max_gpus_per_node == 8
    assert all(type(v) is float for v in spec.peak_tflops.values())


# --- models --------------------------------------------------------------------------------


def test_expected_models_are_shipped():
    assert set(list_models()) == EXPECTED_MODELS | set(NEW_ARCHITECTURES)


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_param_count_matches_published(name):
    spec = load_model(name)
    assert spec.published_params, f"{name}: no published_params_b in registry.yaml"
    assert spec.param_count == pytest.approx(spec.published_params, rel=0.01)
    assert spec.source.startswith("http")


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS | set(NEW_ARCHITECTURES)))
def test_config_json_is_valid_hf_config(name):
    data = json.loads((MODEL_CONFIG_DIR / name / "config.json").read_text())
    text = data.get("text_config", data)  # multimodal wrappers (Llama-4) nest the text model
    for key in ("architectures", "model_type"):
        assert key in data, f"{name}: config.json lacks {key}"
    for key in ("hidden_size", "num_hidden_layers", "vocab_size"):
        assert key in text, f"{name}: config.json lacks {key}"


@pytest.mark.parametrize(
    "name, layers, hidden, heads, kv_heads, head_dim, ffn, vocab, tied",
    [
        ("Llama-3.2-1B", 16, 2048, 32, 8, 64, 8192, 128256, True),
        ("Llama-3.2-3B", 28, 3072, 24, 8, 128, 8192, 128256, True),
        ("Llama-3.1-8B", 32, 4096, 32, 8, 128, 14336, 128256, False),
        ("Llama-3.1-70B", 80, 8192, 64, 8, 128, 28672, 128256, False),
        ("Llama-3.1-405B", 126, 16384, 128, 8, 128, 53248, 128256, False),
        ("Mistral-7B-v0.3", 32, 4096, 32, 8, 128, 14336, 32768, False),
        ("Qwen2.5-7B", 28, 3584, 28, 4, 128, 18944, 152064, False),
        ("Qwen2.5-72B", 80, 8192, 64, 8, 128, 29568, 152064, False),
    ],
)
def test_key_architecture_facts(name, layers, hidden, heads, kv_heads, head_dim, ffn, vocab, tied):
    s = load_model(name)
    assert (s.num_layers, s.hidden_size, s.num_heads, s.num_kv_heads) == (
        layers,
        hidden,
        heads,
        kv_heads,
    )
    assert (s.head_dim, s.intermediate_size, s.vocab_size) == (head_dim, ffn, vocab)
    assert s.tie_word_embeddings is tied


def test_llama31_context_and_qwen_bias():
    for name in ("Llama-3.2-1B", "Llama-3.2-3B", "Llama-3.1-8B", "Llama-3.1-70B", "Llama-3.1-405B"):
        assert load_model(name).max_position_embeddings == 131072
    assert load_model("Qwen2.5-7B").attention_bias is True
    assert load_model("Llama-3.1-8B").attention_bias is False


def test_mixtral_is_moe():
    s = load_model("mixtral")
    assert s.is_moe and s.num_experts == 8 and s.experts_per_token == 2
    assert s.active_params / 1e9 == pytest.approx(12.9, rel=0.01)  # Mistral: 12.9B active


def test_kv_bytes_per_token_llama_70b_bf16():
    assert load_model("Llama-3.1-70B").kv_bytes_per_token(2) == 327680


@pytest.mark.parametrize(
    "alias, canonical",
    [
        ("1b", "Llama-3.2-1B"),
        ("3b", "Llama-3.2-3B"),
        ("8b", "Llama-3.1-8B"),
        ("70b", "Llama-3.1-70B"),
        ("405b", "Llama-3.1-405B"),
        ("meta-llama/Llama-3.1-8B-Instruct", "Llama-3.1-8B"),
        ("llama-3.1-405b-instruct-fp8", "Llama-3.1-405B"),
        ("mistral-7b", "Mistral-7B-v0.3"),
        ("qwen2.5-7b", "Qwen2.5-7B"),
        ("mixtral", "Mixtral-8x7B"),
        ("MIXTRAL-8X7B", "Mixtral-8x7B"),
    ],
)
def test_model_aliases_resolve(alias, canonical):
    assert load_model(alias).name == canonical


def test_unknown_model_suggests_closest_name():
    with pytest.raises(PerfModelError, match="did you mean"):
        load_model("8c")


def test_config_json_path_loads(tmp_path):
    src = MODEL_CONFIG_DIR / "Llama-3.1-8B" / "config.json"
    path = tmp_path / "my-model" / "config.json"
    path.parent.mkdir()
    path.write_text(src.read_text())
    spec = load_model(str(path))
    assert spec.param_count == load_model("8b").param_count
    assert spec.name == "my-model"


def test_config_json_missing_field_names_it(tmp_path):
    data = json.loads((MODEL_CONFIG_DIR / "Llama-3.1-8B" / "config.json").read_text())
    del data["hidden_size"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PerfModelError) as info:
        load_model(str(path))
    message = str(info.value)
    assert "hidden_size" in message and str(path) in message
