"""``heicconv bench --traffic``: a month simulated on every route, in the report, the charts and bench.json."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from heicconv.bench import Bench, Measurement
from heicconv.bench.cli import build_parser, fleet_from, main, traffics_from

SVG = "{http://www.w3.org/2000/svg}"


def measurement(backend: str, wall: float, peak: float) -> Measurement:
    return Measurement(
        "a.heic",
        backend,
        "jpeg",
        3,
        input_bytes=1_000_000,
        width=4000,
        height=3000,
        wall_s=wall,
        cpu_s=wall,
        walls_s=(wall,) * 3,
        cpus_s=(wall,) * 3,
        peak_rss_mb=peak,
        base_rss_mb=60.0,
        output_bytes=900_000,
        cold_start_s=wall + 0.4,
    )


@pytest.fixture
def bench_json(tmp_path: Path) -> Path:
    """What a run of pillow, ffmpeg and wand on one photo would have written (no measuring in these tests)."""
    bench = Bench(
        [measurement("pillow", 0.25, 180.0), measurement("ffmpeg", 0.2, 220.0), measurement("wand", 0.7, 260.0)]
    )
    bench.runs = 3
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(bench.to_dict()), encoding="utf-8")
    return path


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    """Two days of hourly counts: quiet nights, a busy afternoon, one hour of a burst."""
    rows = ["timestamp,requests"]
    for hour in range(48):
        n = 50 if hour % 24 < 8 else 3000
        if hour == 30:
            n = 60_000
        rows.append(f"2026-11-{2 + hour // 24:02d}T{hour % 24:02d}:00:00Z,{n}")
    path = tmp_path / "uploads.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_traffic_csv_gives_a_month_section_charts_and_raw_numbers(
    bench_json: Path, uploads: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main(["--from-json", str(bench_json), "--traffic", str(uploads), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "A month of uploads traffic (uploads.csv: 48 rows, one a hour, 2.0 days, 156,750 requests" in printed
    report = (out / "report.md").read_text()
    assert "## A month of uploads traffic" in report and "### What the simulation assumes" in report
    for backend in ("pillow", "ffmpeg", "wand"):
        assert f"- **{backend}**: at 2.4 million a month, " in report
    data = json.loads((out / "bench.json").read_text())
    (month,) = data["months"]
    assert month["traffic"]["requests"] == 156_750 and month["traffic"]["minutes"] == 48 * 60
    for backend, outcomes in month["outcomes"].items():
        assert len(outcomes) == 8 + 2  # 4 sizes x 2 architectures, 2 containers
        assert all(o["requests"] == 156_750 for o in outcomes)
        packages = {o["package"] for o in outcomes if o["kind"] == "lambda"}
        assert packages == ({"container image"} if backend == "wand" else {"ZIP"})
        # Every row of the full table is in the report, with its monthly cost.
        for o in outcomes:
            cost = f"${o['monthly']:,.0f}" if o["monthly"] >= 100 else f"${o['monthly']:,.2f}"
            assert f"| {backend}: {o['route']} | {cost} |" in report
    for name in ("cost_by_volume-uploads.svg", "latency-uploads.svg", "traffic-uploads.svg"):
        root = ET.parse(out / name).getroot()
        assert root.get("width") == "800" or name.startswith("latency")
        assert f"]({name})" in report
    lines = ET.parse(out / "cost_by_volume-uploads.svg").getroot().findall(f"{SVG}polyline")
    assert len(lines) == 6  # a Lambda and a container line for each backend
    # The burst hour: 1,000 a minute for an hour on one task that does 240 -> the container queues.
    assert all(o["waited"] > 0 for b in month["outcomes"].values() for o in b if o["kind"] == "container"), (
        "the burst should queue on a container that starts with one task"
    )


def test_a_malformed_traffic_csv_stops_the_command_with_its_line(
    bench_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,requests\n2026-11-02T09:00:00Z,12\n2026-11-02T09:01:00Z,lots\n", encoding="utf-8")
    assert main(["--from-json", str(bench_json), "--traffic", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == (
        f"heicconv bench: error: {bad}, line 3: requests must be a whole number >= 0, got 'lots'\n"
    )
    assert not (tmp_path / "r").exists()


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["x.heic", *argv])


def test_fleet_settings_come_from_the_command_line_then_the_bench_table(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"min_tasks": "2", "scale_on": "queue", "keep_warm_min": "5"}.items():
        monkeypatch.setenv(f"HEICCONV_BENCH_{key.upper()}", value)
    fleet = fleet_from(args("--min-tasks", "3"))
    assert (fleet.min_tasks, fleet.scale_on, fleet.keep_warm_min, fleet.max_tasks) == (3, "queue", 5, 1000)
    monkeypatch.setenv("HEICCONV_BENCH_SCALE_ON", "memory")
    with pytest.raises(ValueError, match=r"bench.scale_on: must be one of cpu, queue, got 'memory' \(in the env"):
        fleet_from(args())
    monkeypatch.delenv("HEICCONV_BENCH_SCALE_ON")
    with pytest.raises(ValueError, match="min_tasks \\(5\\) is above max_tasks \\(2\\)"):
        fleet_from(args("--min-tasks", "5", "--max-tasks", "2"))


def test_traffic_and_volume_from_the_bench_table(monkeypatch: pytest.MonkeyPatch) -> None:
    assert traffics_from(args()) == []
    monkeypatch.setenv("HEICCONV_BENCH_TRAFFIC", "office-hours:off=0.1")
    monkeypatch.setenv("HEICCONV_BENCH_VOLUME", "2e6")
    (t,) = traffics_from(args())
    assert t.label == "office-hours" and t.per_month == pytest.approx(2e6, rel=0.01)
    with pytest.raises(ValueError, match=r"bench.volume: must be a number >= 1 and <= 1e\+12, got 'none'"):
        traffics_from(args("--traffic", "steady", "--volume", "none"))


def test_route_md_is_what_update_route_renders_from_its_bench_json() -> None:
    docs = Path(__file__).resolve().parent.parent / "docs"
    spec = importlib.util.spec_from_file_location("update_route", docs / "update_route.py")
    assert spec is not None and spec.loader is not None
    update_route = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update_route)
    data = json.loads((docs / "charts" / "bench.json").read_text(encoding="utf-8"))
    assert update_route.render(data) in (docs / "route.md").read_text(encoding="utf-8"), (
        "regenerate it: python docs/update_route.py"
    )
    # The page shows ffmpeg (what `auto` picks) and two traffic shapes, and every chart it names exists.
    assert [m["traffic"]["label"] for m in data["months"]] == ["office-hours", "bursty"]
    assert "ffmpeg" in {p["workload"]["backend"] for p in data["projections"]}
    for chart in re.findall(r"\]\(charts/([^)]+\.svg)\)", update_route.render(data)):
        assert (docs / "charts" / chart).is_file(), chart


def test_the_verdict_says_when_lambda_was_throttled() -> None:
    from heicconv.bench.cost import CostModel, Workload
    from heicconv.bench.month import Month, month_verdict, route_rows
    from heicconv.bench.simulate import Fleet, simulate_container, simulate_lambda
    from heicconv.bench.traffic import from_counts

    w = Workload("pillow", wall_s=0.5, cpu_s=0.5, peak_rss_mb=200.0)
    burst = from_counts([6000] + [0] * 10)
    fleet = Fleet(concurrency_limit=20)
    lam = simulate_lambda(burst, w, "arm64", 1769, fleet, CostModel())
    box = simulate_container(burst, w, "arm64", fleet, CostModel())
    month = Month(burst, fleet, {"pillow": [lam, box]}, {"pillow": (lam, box)})
    (line,) = month_verdict(month)
    assert "(0.33% cold starts, 60.0% throttled at the concurrency limit)" in line
    lam_row, box_row = route_rows(month)
    assert lam_row[-1] == "throttled at the concurrency limit: the queued requests waited"
    assert "throttled" not in box_row[-1]


def test_one_command_on_a_folder_of_photos_and_a_traffic_csv(
    uploads: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from heicconv.testing.fixtures import make_heic

    photos = tmp_path / "Photos"
    photos.mkdir()
    (photos / "IMG_0001.HEIC").write_bytes(make_heic(size=(320, 240)))
    out = tmp_path / "report"
    argv = [str(photos), "--backends", "pillow", "--runs", "1", "--traffic", str(uploads), "--out", str(out)]
    assert main(argv) == 0
    assert "- pillow: at 2.4 million a month, " in capsys.readouterr().out
    data = json.loads((out / "bench.json").read_text())
    assert [m["name"] for m in data["measurements"]] == ["IMG_0001.HEIC"]
    assert list(data["months"][0]["outcomes"]) == ["pillow"]
    assert (out / "cost_by_volume-uploads.svg").is_file()
