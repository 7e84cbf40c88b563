"""``precision: auto`` per capability (the probe monkeypatched), and the machine line."""

from __future__ import annotations

import warnings

import pytest
import torch

from fcnlab import hardware

AMX = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"})
AVX512_BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})
AVX2 = frozenset({"avx2", "fma"})


@pytest.fixture
def cpu(monkeypatch):
    for cap in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
        monkeypatch.delenv(cap, raising=False)  # the simulated CPU alone decides

    def use(flags: frozenset[str], model: str = "Test CPU") -> None:
        monkeypatch.setattr(hardware, "cpu_flags", lambda: flags)
        monkeypatch.setattr(hardware, "cpu_model", lambda: model)
        hardware.warn_slow_bf16.cache_clear()

    return use


@pytest.mark.parametrize(
    ("flags", "precision", "because"),
    [
        (AMX, "bf16", "has AMX"),
        (AVX512_BF16, "bf16", "has AVX512-BF16"),
        (AVX2, "fp32", "no AMX/AVX512-BF16 (AVX2), bf16 is emulated"),
        (frozenset({"avx2", "avx512f"}), "fp32", "(AVX2 / AVX-512)"),
    ],
)
def test_auto_on_cpus(cpu, flags, precision, because):
    cpu(flags, "Some CPU")
    choice = hardware.resolve_precision("auto", "cpu")
    assert choice.precision == precision
    assert because in choice.reason and "Some CPU" in choice.reason
    assert choice.line().startswith(f"precision {precision} (auto: Some CPU")


@pytest.mark.parametrize(("bf16", "precision"), [(True, "bf16"), (False, "fp16")])
def test_auto_on_gpus(monkeypatch, bf16, precision):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Test GPU")
    choice = hardware.resolve_precision("auto", torch.device("cuda", 0))
    assert choice.precision == precision and "Test GPU" in choice.reason


def test_forced_bf16_without_native_units_warns_once_and_runs(cpu):
    cpu(AVX2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert hardware.resolve_precision("bf16", "cpu").precision == "bf16"
    assert len(caught) == 1 and "about 10x slower than fp32" in str(caught[0].message)


def test_forced_bf16_with_native_units_does_not_warn(cpu):
    cpu(AMX)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hardware.resolve_precision("bf16", "cpu").reason == "as configured"


def test_explicit_precisions_are_kept(cpu):
    cpu(AMX)
    assert hardware.resolve_precision("fp32", "cpu").precision == "fp32"


def test_isa_summary_and_machine_line(cpu):
    cpu(AMX, "Intel(R) Xeon(R) Test")
    assert hardware.isa_summary() == "AVX2 / AVX-512 / VNNI / AVX512-BF16 / AMX"
    assert hardware.isa_summary(AVX2) == "AVX2"
    line = hardware.machine_line()
    assert line.startswith("Intel(R) Xeon(R) Test (AVX2 / AVX-512 / VNNI / AVX512-BF16 / AMX), ")
    assert f"{torch.get_num_threads()} threads" in line and "torch " in line


def test_the_real_probe_reads_this_machine():
    assert hardware.cpu_model()
    assert isinstance(hardware.cpu_flags(), frozenset)
    choice = hardware.resolve_precision("auto", "cpu")
    assert choice.precision == ("bf16" if hardware.cpu_has_native_bf16() else "fp32")


@pytest.mark.parametrize(
    ("cap", "precision", "isa_left"),
    [
        ("AVX2", "fp32", {"avx2"}),
        ("avx512_core", "fp32", {"avx2", "avx512f"}),
        ("AVX512_CORE_BF16", "bf16", {"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}),
        ("AVX512_CORE_AMX", "bf16", set(AMX)),  # at or above AMX: nothing is capped
        ("nonsense", "bf16", set(AMX)),  # oneDNN ignores unknown values, so do we
    ],
)
def test_an_isa_cap_below_the_bf16_units_means_fp32(cpu, monkeypatch, cap, precision, isa_left):
    cpu(AMX, "Xeon")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert hardware.usable_flags() == isa_left
    choice = hardware.resolve_precision("auto", "cpu")
    assert choice.precision == precision
    if precision == "fp32":
        assert f"ONEDNN_MAX_CPU_ISA={cap.upper()}" in choice.reason
        assert "bf16 is emulated" in choice.reason
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hardware.resolve_precision("bf16", "cpu")
        assert len(caught) == 1


def test_the_machine_line_names_an_isa_cap(cpu, monkeypatch):
    cpu(AMX, "Xeon")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "avx2")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert "AMX; capped: ONEDNN_MAX_CPU_ISA=AVX2)" in hardware.machine_line()
    monkeypatch.delenv("DNNL_MAX_CPU_ISA")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert "AMX; ATEN_CPU_CAPABILITY=avx2)" in hardware.machine_line()
