"""The month simulator pinned to cases worked by hand (heicconv.bench.simulate)."""

from __future__ import annotations

import pytest

from heicconv.bench.cost import CostModel, Workload, container_cost, lambda_cost, project
from heicconv.bench.prices import Prices
from heicconv.bench.simulate import (
    Fleet,
    break_even,
    chart_routes,
    simulate_container,
    simulate_lambda,
    simulate_projection,
    sweep,
)
from heicconv.bench.traffic import MINUTES_PER_MONTH, from_counts, shape
from heicconv.errors import ConfigError

# Half a second of one vCPU a conversion: at 1,769 MB (one vCPU) a Lambda takes 0.5 s and an
# environment serves 120 requests a minute; so does a 1-vCPU task with one worker.
HALF = Workload("pillow", wall_s=0.5, cpu_s=0.5, peak_rss_mb=200.0)
COLD = Workload("pillow", wall_s=0.5, cpu_s=0.5, peak_rss_mb=200.0, cold_extra_s=1.0)
GB_1769 = 1769 / 1024
X86 = 0.0000166667


def test_constant_traffic_without_cold_starts_costs_what_the_static_model_says() -> None:
    model = CostModel(cold_start_fraction=0.0)
    traffic = from_counts([120] * 600)
    for memory in (512, 1769, 3008):
        for arch in ("x86_64", "arm64"):
            out = simulate_lambda(traffic, HALF, arch, memory, Fleet(), model)
            static = lambda_cost(HALF, memory, arch, model)
            assert out.cost == pytest.approx(72_000 * static.per_million / 1e6, rel=1e-12)
            assert out.p50_s == out.p99_s == out.max_s == static.billed_ms / 1000


def test_a_container_kept_half_busy_costs_the_static_model_at_fifty_percent() -> None:
    model = CostModel()
    # 60 a minute on one task that can do 120: half busy, the whole hour billed.
    out = simulate_container(from_counts([60] * 60), HALF, "x86_64", Fleet(min_tasks=1, max_tasks=1), model)
    static = container_cost(HALF, "x86_64", model, utilisation=0.5)
    assert out.cost == pytest.approx(static.hourly, rel=1e-12)
    assert out.cost == pytest.approx(3600 * static.per_million / 1e6, rel=1e-12)
    assert out.monthly == pytest.approx(static.hourly * MINUTES_PER_MONTH / 60)
    assert (out.waited, out.peak, out.p99_s) == (0, 1, 0.5)


def test_steady_traffic_pays_one_round_of_cold_starts() -> None:
    out = simulate_lambda(from_counts([600] * 120), COLD, "x86_64", 1769, Fleet(), CostModel())
    # 600 a minute x 0.5 s = 5 environments busy; all five start cold in the first minute, then stay warm.
    assert (out.cold_starts, out.peak, out.waited) == (5, 5, 0)
    assert out.max_s == 1.5 and out.p99_s == 0.5
    billed = (72_000 - 5) * 0.5 + 5 * 1.5
    assert out.cost == pytest.approx(72_000 * 0.2 / 1e6 + billed * GB_1769 * X86, rel=1e-12)


def test_a_single_burst_on_lambda_starts_one_environment_per_concurrent_request() -> None:
    traffic = from_counts([0] * 10 + [6000] + [0] * 20)
    out = simulate_lambda(traffic, COLD, "x86_64", 1769, Fleet(), CostModel())
    # 6,000 in a minute x 0.5 s / 60 s = 50 at once, every one a cold start; nobody waits.
    assert (out.cold_starts, out.peak, out.waited) == (50, 50, 0)
    assert out.cold_share == pytest.approx(50 / 6000)
    assert (out.p50_s, out.p99_s, out.max_s) == (0.5, 0.5, 1.5)
    assert out.cost == pytest.approx(6000 * 0.2 / 1e6 + (5950 * 0.5 + 50 * 1.5) * GB_1769 * X86, rel=1e-12)


def test_a_burst_above_the_concurrency_limit_is_throttled_and_queues() -> None:
    traffic = from_counts([6000] + [0] * 10)
    out = simulate_lambda(traffic, COLD, "x86_64", 1769, Fleet(concurrency_limit=20), CostModel())
    # 20 environments do 2,400 a minute: 2,400 at once, 2,400 a minute later, 1,200 in the third minute.
    # The second minute's requests waited from the middle of minute 0 to the middle of their slice
    # of minute 1 (60 s); the third minute's to the middle of the first half of minute 2 (105 s).
    assert (out.cold_starts, out.peak, out.waited) == (20, 20, 3600)
    assert out.max_s == pytest.approx(105.5)
    assert out.p50_s == pytest.approx(60.5)  # 2,400 at 0.5 s (20 of them 1.5 s), then 2,400 at 60.5 s


def test_keep_warm_window() -> None:
    fleet = Fleet(keep_warm_min=10)
    within = simulate_lambda(from_counts([1] + [0] * 9 + [1]), COLD, "arm64", 1769, fleet, CostModel())
    after = simulate_lambda(from_counts([1] + [0] * 10 + [1]), COLD, "arm64", 1769, fleet, CostModel())
    assert (within.cold_starts, after.cold_starts) == (1, 2)


def test_provisioned_concurrency_has_no_cold_starts_and_its_own_prices() -> None:
    prices = Prices()
    out = simulate_lambda(from_counts([60] * 60), COLD, "x86_64", 1769, Fleet(provisioned=1), CostModel())
    assert out.cold_starts == 0
    kept, duration = prices.provisioned("x86_64")
    expected = 3600 * 0.2 / 1e6 + 3600 * 0.5 * GB_1769 * duration + 3600 * GB_1769 * kept
    assert out.cost == pytest.approx(expected, rel=1e-12)


def test_a_burst_on_one_container_task_queues_minute_by_minute() -> None:
    fleet = Fleet(min_tasks=1, max_tasks=1)
    out = simulate_container(from_counts([600] + [0] * 9), HALF, "x86_64", fleet, CostModel())
    # 120 a minute: served in minutes 0..4, waiting 0, 60, 120, 180, 240 s (middle to middle).
    assert (out.waited, out.peak, out.cold_starts) == (480, 1, 0)
    assert (out.p50_s, out.p95_s, out.max_s) == (120.5, 240.5, 240.5)


def test_a_burst_scales_the_fleet_out_after_the_delay_on_queue_depth() -> None:
    fleet = Fleet(min_tasks=1, max_tasks=50, scale_on="queue", scale_target=0.7, scale_out_delay_min=2, scale_in_min=15)
    model = CostModel()
    out = simulate_container(from_counts([0] * 5 + [600] + [0] * 29), HALF, "x86_64", fleet, model)
    # Minute 5 serves 120 and leaves 480 waiting: (480 waiting + 120 in flight) / (0.7 x 120 a task) -> 8 tasks,
    # serving from minute 8. Minutes 6 and 7 serve 120 each on the one task; minute 8 the last 240, on 8 tasks
    # (960 a minute): they waited 3 minutes less half a minute, plus the middle of 240 of 960 (7.5 s).
    assert out.peak == 8 and out.waited == 480
    assert out.max_s == pytest.approx(0.5 + 180 - 30 + 120 / 960 * 60, abs=0.001)
    # Billed: 1 task all 35 minutes; 7 more from the decision (2 minutes starting, minutes 8 to 20 serving),
    # then the fleet follows the largest want of the last 15 minutes down: the wants of minutes 6, 7 and 8
    # were 6, 5 and 3 tasks, so 5, 4 and 2 more in minutes 21, 22 and 23.
    hourly = model.container_vcpu * 0.04048 + model.container_memory_gb * 0.004445
    task_minutes = out.cost / (hourly / 60)
    assert task_minutes == pytest.approx(35 + 7 * 2 + 7 * 13 + 5 + 4 + 2, abs=1e-6)


def test_scaling_on_cpu_grows_the_fleet_by_at_most_one_over_the_target_a_step() -> None:
    fleet = Fleet(min_tasks=1, max_tasks=100, scale_on="cpu", scale_target=0.5, scale_out_delay_min=0)
    out = simulate_container(from_counts([0] * 5 + [100_000] + [0] * 5), HALF, "x86_64", fleet, CostModel())
    # A busy fleet reads 100 %: 1 -> 2 -> 4 -> 8 -> 16 -> 32 tasks, one step a minute (the last minute's
    # decision, 64, would serve after the traffic ends).
    assert out.peak == 32


def test_every_backend_route_is_simulated_and_packages_named() -> None:
    model = CostModel()
    traffic = from_counts([5] * 120)
    for backend, packages in (
        ("pillow", {"ZIP"}),
        ("ffmpeg", {"ZIP"}),
        ("vips", {"container image"}),
        ("wand", {"container image"}),
        ("mine", {"package unknown"}),
    ):
        w = Workload(backend, wall_s=0.3, cpu_s=0.3, peak_rss_mb=200.0)
        outs = simulate_projection(project(w, model), traffic, Fleet(), model)
        assert len(outs) == len(model.memory_mb) * 2 + 2
        assert {o.package for o in outs if o.kind == "lambda"} == packages
        lam, box = chart_routes(outs)
        assert lam is not None and box is not None and lam.arch == box.arch


def test_the_break_even_volume_is_where_one_always_on_task_costs_what_lambda_does() -> None:
    model = CostModel()
    one_task = Fleet(min_tasks=1, max_tasks=1)
    traffic = from_counts([23] * 1440)  # a day is enough: every figure is scaled to a 30-day month
    outs = simulate_projection(project(HALF, model), traffic, one_task, model)
    lam, box = chart_routes(outs)
    assert lam is not None and box is not None
    assert (lam.label, box.label) == ("Lambda arm64 1769 MB", "Container arm64 1 vCPU 2 GB")
    x = break_even(traffic, HALF, lam, box, one_task, model, volumes=(1e5, 1e6, 1e7))
    # By hand: one arm64 task (1 vCPU, 2 GB) for 720 hours against $0.2 + 0.5 s x 1.7275 GB x $0.0000133334 a
    # request: about 2.43 million a month.
    per_request = 0.2 / 1e6 + 0.5 * GB_1769 * 0.0000133334
    by_hand = (0.03238 + 2 * 0.00356) * 720 / per_request
    assert x is not None and x == pytest.approx(by_hand, rel=0.01)
    # Autoscaled at a 70 % target, Poisson minutes above 84 requests start a second task well before that.
    scaled = break_even(traffic, HALF, lam, box, Fleet(), model, volumes=(1e5, 1e6, 1e7))
    assert scaled is not None and scaled > 1.3 * by_hand
    lines = sweep(traffic, [(HALF, lam), (HALF, box)], one_task, model, volumes=(1e5, 1e7))
    assert lines[0][0][1] < lines[1][0][1] and lines[0][1][1] > lines[1][1][1]
    assert [ok for line in lines for _, _, ok in line] == [True, True, True, False]  # one task cannot do 1e7


def test_a_hundred_million_requests_a_month_are_counted_whole() -> None:
    traffic = shape("bursty", 1e8)
    assert traffic.minutes == MINUTES_PER_MONTH
    assert traffic.total == pytest.approx(1e8, rel=0.001)
    out = simulate_lambda(traffic, HALF, "arm64", 1769, Fleet(), CostModel())
    assert out.requests == traffic.total


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"min_tasks": 5, "max_tasks": 2}, "min_tasks (5) is above max_tasks (2)"),
        ({"scale_on": "memory"}, "scale_on: expected one of cpu, queue"),
        ({"scale_target": 0}, "scale_target: expected a number > 0 and <= 1"),
        ({"keep_warm_min": -1}, "keep_warm_min: expected a whole number from 0 to 1440"),
    ],
)
def test_bad_fleet_settings_are_config_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Fleet(**settings)  # type: ignore[arg-type]


def test_a_month_starts_where_a_month_like_it_would_have_left_the_fleet() -> None:
    # 100 million a month, steady: about 2,315 a minute, 28 tasks at the 70 % target (84 a minute each). The
    # fleet starts as the month's last hours left it, so the first morning neither queues nor overshoots.
    out = simulate_container(shape("steady", 1e8), HALF, "arm64", Fleet(), CostModel())
    assert out.waited == 0 and 28 <= out.peak <= 32
    assert out.requests == shape("steady", 1e8).total


def test_a_fleet_scaled_to_zero_starts_a_task_for_the_first_request() -> None:
    fleet = Fleet(min_tasks=0, scale_on="queue", scale_out_delay_min=2)
    out = simulate_container(from_counts([10] + [0] * 30), HALF, "x86_64", fleet, CostModel())
    # Nobody serves minute 0: 10 waiting / 84 a task -> 1 task, serving from minute 3; the 10 wait from the middle
    # of minute 0 to the middle of the first 10 of 120 in minute 3.
    assert (out.peak, out.waited) == (1, 10)
    assert out.max_s == out.p50_s == pytest.approx(0.5 + 180 - 30 + 5 / 120 * 60, abs=0.001)
