"""The cost model of ``heicconv bench`` against cases computed by hand."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest

from heicconv import ConfigError
from heicconv.bench.cli import build_parser, model_from
from heicconv.bench.cost import (
    CostModel,
    Workload,
    billed_ms,
    break_even_utilisation,
    container_cost,
    lambda_cost,
    lambda_duration_s,
    project,
)
from heicconv.bench.prices import PRICE_FACTS, Prices, parse_price
from heicconv.bench.report import verdict

X86 = 0.0000166667  # USD per GB-second, the documented default
ARM = 0.0000133334
WARM_ONLY = CostModel(cold_start_fraction=0.0)


def work(wall: float, cpu: float | None = None, peak: float = 100.0, cold: float = 0.0) -> Workload:
    return Workload("pillow", wall_s=wall, cpu_s=wall if cpu is None else cpu, peak_rss_mb=peak, cold_extra_s=cold)


def test_the_issue_example_x86_one_vcpu() -> None:
    est = lambda_cost(work(0.7), 1769, "x86_64", WARM_ONLY)
    assert est.per_million == pytest.approx(0.20 + 0.7 * 1.7275390625 * 0.0000166667 * 1e6)
    assert est.billed_ms == 700
    assert est.requests_cost == pytest.approx(0.20)
    assert est.flags == ()


def test_arm64_uses_its_own_gb_second_price() -> None:
    est = lambda_cost(work(0.7), 1769, "arm64", WARM_ONLY)
    assert est.per_million == pytest.approx(0.20 + 0.7 * 1.7275390625 * 0.0000133334 * 1e6)


def test_duration_is_rounded_up_to_the_millisecond() -> None:
    est = lambda_cost(work(0.7001), 1769, "x86_64", WARM_ONLY)
    assert est.billed_ms == 701
    assert est.per_million == pytest.approx(0.20 + 0.701 * 1.7275390625 * X86 * 1e6)
    assert billed_ms(0.0000001) == 1
    # 2.007 * 1000 is 2007.0000000000002 in floating point: still 2007 ms, not 2008
    assert billed_ms(2.007) == 2007


def test_below_one_vcpu_a_job_slows_in_proportion() -> None:
    est = lambda_cost(work(0.5), 512, "x86_64", WARM_ONLY)
    assert est.duration_s == pytest.approx(0.5 * 1769 / 512)
    assert est.billed_ms == 1728  # 1727.5390625 ms rounded up
    assert est.per_million == pytest.approx(0.20 + 1.728 * 0.5 * X86 * 1e6)


def test_above_one_vcpu_a_single_threaded_job_is_no_faster() -> None:
    est = lambda_cost(work(0.7), 3008, "x86_64", WARM_ONLY)
    assert est.duration_s == pytest.approx(0.7)
    assert est.per_million == pytest.approx(0.20 + 0.7 * 2.9375 * X86 * 1e6)


def test_a_multi_threaded_job_gains_from_more_vcpus_until_its_wall_time() -> None:
    # 1.5 s of CPU in 0.5 s of wall time: three threads busy
    assert lambda_duration_s(0.5, 1.5, 1769) == pytest.approx(1.5)
    assert lambda_duration_s(0.5, 1.5, 2 * 1769) == pytest.approx(0.75)
    assert lambda_duration_s(0.5, 1.5, 10240) == pytest.approx(0.5)  # 5.8 vCPUs: no faster than measured


def test_cold_starts_pay_the_start_up_on_their_fraction_of_requests() -> None:
    est = lambda_cost(work(0.7, cold=0.3), 1769, "x86_64", CostModel(cold_start_fraction=0.01))
    assert est.billed_ms_cold == 1000
    assert est.per_million == pytest.approx(0.20 + (0.99 * 0.7 + 0.01 * 1.0) * 1.7275390625 * X86 * 1e6)


def test_memory_below_one_and_a_half_times_the_peak_is_flagged() -> None:
    model = CostModel()
    assert lambda_cost(work(0.1, peak=341.0), 512, "x86_64", model).flags == ()  # 511.5 MB needed
    flags = lambda_cost(work(0.1, peak=342.0), 512, "x86_64", model).flags  # 513 MB needed
    assert len(flags) == 1 and flags[0].startswith("memory: 512 MB < 1.5 x peak RSS 342 MB")
    assert lambda_cost(work(0.1, peak=342.0), 1024, "x86_64", model).flags == ()
    p = project(work(0.1, peak=900.0), model)
    assert [e.memory_mb for e in p.lambdas if not e.flags] == [1769, 3008, 1769, 3008]
    assert p.cheapest_lambda() is not None and p.cheapest_lambda().memory_mb == 1769  # type: ignore[union-attr]


def test_the_fastest_lambda_for_about_the_cheapest_price() -> None:
    single = project(work(0.5), CostModel())
    cheapest, fastest = single.cheapest_lambda(), single.fastest_lambda()
    assert cheapest is not None and fastest is not None
    # Below one vCPU, memory buys speed at the same price; 3008 MB would be no faster and cost 70% more.
    assert (fastest.arch, fastest.memory_mb, fastest.duration_s) == (cheapest.arch, 1769, 0.5)
    # Two threads busy: 3008 MB (1.7 vCPUs) is faster still for about the same GB-seconds.
    double = project(work(0.5, cpu=1.0), CostModel())
    fastest = double.fastest_lambda()
    assert fastest is not None and fastest.memory_mb == 3008
    assert fastest.duration_s == pytest.approx(1.0 * 1769 / 3008)
    assert f"{fastest.label} takes 588 ms" in verdict([double], CostModel())[0]


def test_lambda_limits_are_flagged() -> None:
    slow = lambda_cost(work(1000.0), 1769, "x86_64", CostModel())
    assert any(f.startswith("timeout") for f in slow.flags)
    huge = lambda_cost(work(0.1), 20_000, "x86_64", CostModel())
    assert any("10240 MB" in f for f in huge.flags)
    small = CostModel(memory_mb=(512, 1024))
    too_small = project(work(0.1, peak=1000.0), small)
    assert too_small.cheapest_lambda() is None
    assert "try `--memory 1500` or more" in verdict([too_small], small)[0]
    too_big = project(work(0.1, peak=8000.0), CostModel())
    assert too_big.cheapest_lambda() is None
    lines = verdict([too_big], CostModel())
    assert "it needs 12,000 MB, more than Lambda's 10,240 MB" in lines[0]
    assert lines[1].startswith("No Lambda size tried would hold the workload")


def test_container_cost_per_million_at_a_utilisation() -> None:
    box = container_cost(work(0.7), "x86_64", CostModel(utilisation=0.5))
    hourly = 1 * 0.04048 + 2 * 0.004445
    assert box.hourly == pytest.approx(hourly)
    assert box.per_hour_capacity == pytest.approx(3600 / 0.7)
    assert box.per_million == pytest.approx(hourly / (0.5 * 3600 / 0.7) * 1e6)
    arm = container_cost(work(0.7), "arm64", CostModel(utilisation=1.0, container_vcpu=2, container_memory_gb=4))
    assert arm.per_million == pytest.approx((2 * 0.03238 + 4 * 0.00356) / (2 * 3600 / 0.7) * 1e6)


def test_container_memory_flag_counts_one_worker_per_vcpu() -> None:
    model = CostModel(container_vcpu=2, container_memory_gb=2)
    assert container_cost(work(0.1, peak=600.0), "x86_64", model).flags == ()  # 2 x 1.5 x 600 = 1800 MB
    assert container_cost(work(0.1, peak=700.0), "x86_64", model).flags != ()  # 2100 MB > 2048 MB


def test_break_even_utilisation() -> None:
    model = WARM_ONLY
    lam = lambda_cost(work(0.7), 1769, "x86_64", model)
    box = container_cost(work(0.7), "x86_64", model)
    hourly = 0.04048 + 2 * 0.004445
    expected = (hourly * 0.7 / 3600 * 1e6) / (0.20 + 0.7 * 1.7275390625 * X86 * 1e6)
    u = break_even_utilisation(box, lam)
    assert u == pytest.approx(expected)
    # At exactly that utilisation the two routes cost the same.
    assert container_cost(work(0.7), "x86_64", model, utilisation=u).per_million == pytest.approx(lam.per_million)


def test_a_container_that_never_breaks_even() -> None:
    model = CostModel(prices=Prices().replace(fargate_x86_vcpu_hour=1.0, fargate_arm64_vcpu_hour=1.0))
    p = project(work(0.2), model)
    assert all(p.break_even(e) > 1 for e in p.lambdas)
    lines = verdict([p], model)
    assert "Lambda is cheaper at every volume" in lines[0]
    assert "**Lambda is the cheaper route**" in lines[-1]


def test_verdict_names_the_volume_where_the_container_wins() -> None:
    model = CostModel()
    p = project(work(0.7), model)
    lam = p.cheapest_lambda()
    assert lam is not None
    u = p.break_even(lam)
    assert 0 < u < 1
    first = verdict([p], model)[0]
    assert f"break-even at {u:.1%} utilisation" in first
    assert "Lambda is cheaper; above it the container" in first


def test_prices_default_and_override() -> None:
    prices = Prices()
    assert prices.lambda_x86_gb_s == PRICE_FACTS["lambda_x86_gb_s"].value == 0.0000166667
    changed = prices.replace("the command line (--price)", lambda_x86_gb_s=0.000015)
    assert changed.gb_second("x86_64") == 0.000015 and changed.gb_second("arm64") == ARM
    rows = {r["key"]: r for r in changed.rows()}
    assert rows["lambda_x86_gb_s"]["source"] == "the command line (--price)"
    assert "taken 2026-11" in rows["lambda_arm64_gb_s"]["source"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lambda_x86_gb_s", "expected KEY=VALUE"),
        ("lambda_gpu_gb_s=1", "unknown price"),
        ("lambda_x86_gb_s=cheap", "must be a number"),
        ("lambda_x86_gb_s=-1", ">= 0"),
        ("lambda_x86_gb_s=nan", ">= 0"),
    ],
)
def test_bad_prices_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_price(text)


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_command_line_beats_the_bench_table_which_beats_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert model_from(args()).prices == Prices()
    assert model_from(args()).memory_mb == (512, 1024, 1769, 3008)
    table = {"lambda_x86_gb_s": "0.00001", "memory": "1024,2048", "utilisation": "0.8", "cold_start_fraction": "0.05"}
    for key, value in table.items():
        monkeypatch.setenv(f"HEICCONV_BENCH_{key.upper()}", value)
    model = model_from(args("--price", "lambda_x86_gb_s=0.00002", "--utilisation", "0.25"))
    assert model.prices.lambda_x86_gb_s == 0.00002
    assert model.utilisation == 0.25
    assert model.memory_mb == (1024, 2048)
    assert model.cold_start_fraction == 0.05
    assert model.container_vcpu == 1.0


def test_the_config_file_and_environment_feed_the_bench_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "heicconv.toml").write_text("[bench]\nlambda_arm64_gb_s = 0.00001\nmemory = [2048]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEICCONV_BENCH_UTILISATION", "0.9")
    model = model_from(args())
    assert model.prices.lambda_arm64_gb_s == 0.00001
    assert dict(model.prices.overridden)["lambda_arm64_gb_s"].endswith("heicconv.toml [bench]")
    assert model.memory_mb == (2048,)
    assert model.utilisation == 0.9
    monkeypatch.setenv("HEICCONV_BENCH_UTILISATION", "1.5")
    with pytest.raises(
        ConfigError,
        match=r"bench.utilisation: must be a number > 0 and <= 1, got '1.5' "
        r"\(in the environment \(HEICCONV_BENCH_UTILISATION\)\)",
    ):
        model_from(args())


def test_bad_model_settings_name_the_key_and_where(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"bench.memory: .*, got '512,lots' \(in the command line\)"):
        model_from(args("--memory", "512,lots"))
    with pytest.raises(ConfigError, match=r"bench.archs: must be among x86_64, arm64, got 'riscv'"):
        model_from(args("--archs", "riscv"))
    monkeypatch.setenv("HEICCONV_BENCH_COLD_START_FRACTION", "2")
    with pytest.raises(ConfigError, match=r"bench.cold_start_fraction: .* \(in the environment \(HEICCONV_BENCH_COLD"):
        model_from(args())


def test_no_infinite_numbers_reach_the_projection() -> None:
    p = project(work(0.2), CostModel())
    assert all(math.isfinite(e.per_million) for e in p.lambdas)
    assert all(math.isfinite(c.per_million) for c in p.containers)


def test_every_built_in_backend_has_its_lambda_package_in_the_report() -> None:
    from heicconv.backends import registry
    from heicconv.bench.prices import LAMBDA_PACKAGES, LambdaLimits
    from heicconv.bench.report import package_note

    local = {n for n in registry.BUILTIN if not registry.is_remote(n)}
    assert set(LAMBDA_PACKAGES) == local  # a new backend (ffmpeg) is not silently left out of the model
    limits = LambdaLimits()
    ffmpeg = package_note("ffmpeg", limits)
    assert "docker/build_lambda_zip.py --backend ffmpeg" in ffmpeg
    assert "deploy it from S3" in ffmpeg  # its ZIP is over the 50 MB of a direct upload
    for arch, mb in LAMBDA_PACKAGES["ffmpeg"].unzipped_mb.items():
        assert 0 < mb < limits.package_unzipped_mb and f"{mb:.0f} MB on {arch}" in ffmpeg
    assert "deploy it from S3" not in package_note("pillow", limits)
    assert package_note("vips", limits).startswith("Package, vips: a container image")
    assert package_note("some_plugin", limits).startswith("Package, some_plugin: unknown.")
