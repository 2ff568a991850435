"""The host record and the matrix-product peak every benchmark reports against."""

from __future__ import annotations

import torch

from nasrec_torchrec.analysis.host import ISA_FLAGS, fraction_of_peak, host_record, matmul_peak


def test_host_record_names_the_cpu_its_isa_and_threads():
    record = host_record(threads=1)
    assert record["cpu_model"]
    assert set(record["isa"]) == set(ISA_FLAGS)
    assert all(isinstance(value, bool) for value in record["isa"].values())
    assert record["threads"] == 1 and record["logical_cpus"] >= 1
    assert record["torch"] == torch.__version__


def test_matmul_peak_is_positive_per_dtype_and_restores_threads():
    before = torch.get_num_threads()
    peak = matmul_peak(shapes=[(32, 64, 64), (64, 64, 32)], threads=1, seconds=0.05)
    assert torch.get_num_threads() == before
    assert set(peak) == {"fp32", "bf16"}
    for entry in peak.values():
        assert set(entry["per_shape"]) == {"32x64x64", "64x64x32"}
        assert entry["gflops"] == max(entry["per_shape"].values()) > 0
        assert entry["shape"] in ([32, 64, 64], [64, 64, 32])
        assert set(entry["per_shape_per_cpu_s"]) == {"32x64x64", "64x64x32"}
        assert entry["gflops_per_cpu_s"] == max(entry["per_shape_per_cpu_s"].values()) > 0


def test_fraction_of_peak_divides_by_the_dtype_peak():
    peak = {"fp32": {"gflops": 200.0}, "bf16": {"gflops": 800.0}}
    assert fraction_of_peak(50.0, peak) == 0.25
    assert fraction_of_peak(200.0, peak, "bf16") == 0.25


def test_fraction_of_peak_per_cpu_second_divides_by_the_cpu_time_peak():
    peak = {"fp32": {"gflops": 50.0, "gflops_per_cpu_s": 100.0}}
    assert fraction_of_peak(60.0, peak, clock="cpu") == 0.6
