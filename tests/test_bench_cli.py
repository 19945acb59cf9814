"""``heicconv bench`` end to end: the real command on generated images, its report checked against its raw numbers."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from heicconv.bench import Bench, CostModel, Measurement, run, write_report
from heicconv.bench.cli import main
from heicconv.bench.report import noise_notes
from heicconv.testing.fixtures import make_heic

SIZES = {"small.heic": (320, 240), "wide.heic": (640, 200)}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for name, size in SIZES.items():
        path = folder / name
        path.write_bytes(make_heic(size=size))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def report(
    images: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("report")
    cmd = [sys.executable, "-m", "heicconv.bench", *map(str, images)]
    cmd += ["--backends", "pillow,vips,wand,ffmpeg", "--formats", "jpeg,png", "--runs", "1", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=images[0].parent, timeout=600, check=False)
    return out, done


def table(markdown: str, first_header: str) -> tuple[list[str], list[list[str]]]:
    """The Markdown table whose first column is headed ``first_header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    headers = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return headers, rows


def raw(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "bench.json").read_text())
    return data


def test_the_command_succeeds_and_writes_every_file(report: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, done = report
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr  # no progress indicator when stderr is not a terminal
    for name in ("report.md", "bench.json", "time_per_megapixel.svg", "peak_memory.svg", "cost_per_million.svg"):
        assert (out / name).is_file(), name
        assert f"({name})" in (out / "report.md").read_text() or not name.endswith(".svg")
    assert "Cost per 1,000,000 conversions" in done.stdout
    assert f"report: {out / 'report.md'}" in done.stdout


def test_the_charts_are_valid_svg_with_a_bar_per_measurement(report: tuple[Path, Any]) -> None:
    out, _ = report
    data = raw(out)
    measured = [m for m in data["measurements"] if not m["error"]]
    backends = {m["backend"] for m in measured}
    for name in ("time_per_megapixel.svg", "peak_memory.svg", "cost_per_million.svg"):
        root = ET.parse(out / name).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        bars = [
            r
            for r in root.iter("{http://www.w3.org/2000/svg}rect")
            if r.find("{http://www.w3.org/2000/svg}title") is not None
        ]
        expected = {
            "time_per_megapixel.svg": len(measured),
            "peak_memory.svg": len({(m["name"], m["backend"]) for m in measured}),
            "cost_per_million.svg": len(backends) * (2 + 2),  # the cheapest Lambda size on 2 archs, 2 containers
        }[name]
        assert len(bars) == expected, name
        assert all(float(b.get("width", "-1")) >= 0 for b in bars)


def test_every_backend_is_measured_or_says_why_not(report: tuple[Path, Any]) -> None:
    out, _ = report
    data = raw(out)
    measured = {m["backend"] for m in data["measurements"] if not m["error"]}
    assert "pillow" in measured
    for backend in ("vips", "wand", "ffmpeg"):
        assert backend in measured or data["unavailable"].get(backend), backend
    assert not [m for m in data["measurements"] if m["error"]]
    assert len(data["measurements"]) == len(measured) * len(SIZES) * 2


def test_the_ffmpeg_backend_is_in_the_tables_and_its_zip_in_the_limits(report: tuple[Path, Any]) -> None:
    out, _ = report
    data = raw(out)
    if "ffmpeg" in data["unavailable"]:
        pytest.skip(f"ffmpeg: {data['unavailable']['ffmpeg']}")
    markdown = (out / "report.md").read_text()
    assert "ffmpeg" in table(markdown, "route")[0] and "ffmpeg" in table(markdown, "Lambda route")[0]
    assert any(row[0] == "ffmpeg" for row in table(markdown, "backend")[1])
    assert "Package, ffmpeg: a ZIP (`python docker/build_lambda_zip.py --backend ffmpeg`)" in markdown
    assert "Package, wand: a container image" in markdown
    headers, rows = table(markdown, "route")
    packages = {row[0]: dict(zip(headers, row, strict=True)) for row in rows if row[0].endswith(" package")}
    assert set(packages) == {"Lambda x86_64 package", "Lambda arm64 package"}
    for row in packages.values():
        assert row["ffmpeg"] == row["pillow"] == "ZIP"  # both fit 250 MB unzipped on both architectures
        assert row.get("wand", "container image") == row.get("vips", "container image") == "container image"


def test_the_table_matches_the_raw_measurements(report: tuple[Path, Any]) -> None:
    out, _ = report
    data = raw(out)
    headers, rows = table((out / "report.md").read_text(), "image")
    assert headers[:5] == ["image", "MP", "input MB", "backend", "format"]
    by_key = {(m["name"], m["backend"], m["format"]): m for m in data["measurements"]}
    assert len(rows) == len(by_key)
    for row in rows:
        cell = dict(zip(headers, row, strict=True))
        m = by_key[(cell["image"], cell["backend"], cell["format"])]
        w, h = SIZES[cell["image"]]
        assert (m["width"], m["height"]) == (w, h)
        assert m["runs"] == 1 and len(m["walls_s"]) == 1 and m["wall_s"] == m["walls_s"][0]
        assert cell["MP"] == f"{w * h / 1e6:.2f}"
        assert cell["input MB"] == f"{Path(m['image']).stat().st_size / 2**20:.2f}"
        assert cell["median ms"] == f"{m['wall_s'] * 1000:.1f}"
        assert cell["CPU ms"] == f"{m['cpu_s'] * 1000:.1f}"
        assert cell["ms/MP"] == f"{m['wall_s'] * 1000 / (w * h / 1e6):.1f}"
        assert cell["peak RSS MB"] == f"{m['peak_rss_mb']:.1f}"
        assert cell["output KB"] == f"{m['output_bytes'] / 1024:.1f}"
        assert cell["cold start ms"] == f"{m['cold_start_s'] * 1000:.0f}"
        assert m["output_bytes"] > 0 and m["peak_rss_mb"] >= m["base_rss_mb"] > 0
        assert m["cold_start_s"] > 0 and m["cpu_s"] >= 0


def test_the_per_backend_table_matches_the_raw_measurements(report: tuple[Path, Any]) -> None:
    out, _ = report
    data = raw(out)
    headers, rows = table((out / "report.md").read_text(), "backend")
    assert len(rows) == len(data["projections"])
    for row in rows:
        cell = dict(zip(headers, row, strict=True))
        ms = [m for m in data["measurements"] if m["backend"] == cell["backend"]]
        assert cell["conversions"] == str(len(ms))
        assert cell["mean ms"] == f"{sum(m['wall_s'] for m in ms) / len(ms) * 1000:.1f}"
        assert cell["max peak RSS MB"] == f"{max(m['peak_rss_mb'] for m in ms):.1f}"
        proj = next(p for p in data["projections"] if p["workload"]["backend"] == cell["backend"])
        assert proj["workload"]["peak_rss_mb"] == max(m["peak_rss_mb"] for m in ms)
        assert proj["workload"]["wall_s"] == pytest.approx(sum(m["wall_s"] for m in ms) / len(ms))


def test_the_cost_table_matches_the_projection(report: tuple[Path, Any]) -> None:
    out, _ = report
    data = raw(out)
    headers, rows = table((out / "report.md").read_text(), "route")
    by_label = {row[0]: row for row in rows}
    for i, proj in enumerate(data["projections"]):
        backend = proj["workload"]["backend"]
        assert headers[i + 1] == backend
        for est in proj["lambda"] + proj["container"]:
            value = est["per_million"]
            text = f"${value:,.2f}" if value >= 0.1 else f"${value:.4f}"
            assert by_label[est["label"]][i + 1].startswith(text)
    prices = {row[0]: row for row in table((out / "report.md").read_text(), "key")[1]}
    assert prices["lambda_x86_gb_s"][1] == "1.66667e-05"
    assert "taken 2026-11" in prices["lambda_x86_gb_s"][3]


def test_re_projecting_with_another_price(
    report: tuple[Path, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = report
    status = main(
        [
            "--from-json",
            str(out / "bench.json"),
            "--price",
            "lambda_x86_gb_s=0",
            "--memory",
            "1769",
            "--out",
            str(tmp_path),
        ]
    )
    assert status == 0
    data = raw(tmp_path)
    assert data["measurements"] == raw(out)["measurements"]
    for proj in data["projections"]:
        x86 = [e for e in proj["lambda"] if e["arch"] == "x86_64"]
        assert [e["memory_mb"] for e in x86] == [1769]
        assert x86[0]["duration_cost"] == 0 and x86[0]["per_million"] == pytest.approx(0.20)
    assert "the command line (--price)" in (tmp_path / "report.md").read_text()
    assert "Cost per 1,000,000 conversions" in capsys.readouterr().out


def test_the_python_api(images: list[Path], tmp_path: Path) -> None:
    bench = run(images[:1], backends=["pillow"], formats=["webp"], runs=2)
    assert [(m.name, m.backend, m.format, m.runs, len(m.walls_s)) for m in bench.measurements] == [
        ("small.heic", "pillow", "webp", 2, 2)
    ]
    assert bench.versions["pillow"]["pillow"]
    path = write_report(bench, CostModel(), tmp_path)
    assert path == tmp_path / "report.md"
    again = Bench.from_dict(raw(tmp_path))
    assert again.measurements == bench.measurements


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal(images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    assert main([str(images[0]), "--backends", "pillow", "--runs", "1", "--out", str(tmp_path)]) == 0
    assert "\r[1/1] pillow small.heic jpeg" in err.getvalue()
    assert err.getvalue().endswith("\r")  # the line is cleared at the end


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backends", "gimp"], "unknown backend 'gimp'"),
        (["--formats", "bmp"], "bmp"),
        (["--runs", "0"], "bench.runs: must be an integer of at least 1, got 0 (in the command line)"),
        (["--price", "lambda_x86_gb_s=free"], "lambda_x86_gb_s"),
    ],
)
def test_usage_errors(
    images: list[Path], tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(images[0]), "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("heicconv bench: error:") and message in err


def test_a_bad_bench_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bench.json"
    bad.write_text('{"measurements": [{"wall_s": 1}]}')
    assert main(["--from-json", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "a bench.json written by heicconv bench" in capsys.readouterr().err


def test_an_unknown_key_in_the_bench_table(
    images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "heicconv.toml").write_text("[bench]\nrun = 3\n")
    monkeypatch.chdir(tmp_path)
    assert main([str(images[0]), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "bench.run: unknown key (in heicconv.toml [bench]); known keys:" in err and "runs" in err


def test_a_missing_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope.heic"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_an_undecodable_image_is_reported_not_fatal(tmp_path: Path) -> None:
    bad = tmp_path / "bad.heic"
    bad.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(40))
    bench = run([bad], backends=["pillow"], runs=1)
    assert len(bench.measurements) == 1 and not bench.measurements[0].ok
    assert bench.measurements[0].error.startswith(("DecodeError", "UnsupportedFormatError"))
    assert bench.backends() == []
    path = write_report(bench, CostModel(), tmp_path / "out")
    assert "bad.heic" in path.read_text()


def test_a_file_over_the_input_limit_is_refused_unread(tmp_path: Path) -> None:
    """A file larger than ``max_input_bytes`` is reported, not read into memory (a sparse file: no disk used)."""
    import heicconv

    big = tmp_path / "big.heic"
    with big.open("wb") as fh:
        fh.truncate(heicconv.Limits().max_input_bytes + 1)
    bench = run([big], backends=["pillow"], runs=1)
    (m,) = bench.measurements
    assert not m.ok and m.error.startswith("LimitExceededError") and "max_input_bytes" in m.error
    assert 0 < m.peak_rss_mb < 200, m.peak_rss_mb  # the 256 MiB were never read


@pytest.mark.skipif(not os.environ.get("HEICCONV_CORPUS"), reason="set HEICCONV_CORPUS to the shared corpus folder")
def test_a_real_photo(tmp_path: Path) -> None:
    photo = Path(os.environ["HEICCONV_CORPUS"]) / "real" / "pug.heic"
    bench = run([photo], backends=["pillow"], runs=1)
    (m,) = bench.measurements
    assert m.ok, m.error
    assert (m.width, m.height) == (4032, 3024)
    assert m.peak_rss_mb > m.base_rss_mb
    report = write_report(bench, CostModel(), tmp_path).read_text()
    assert "| pug.heic | 12.19 | 1.24 | pillow | jpeg |" in report


def test_a_busy_machine_is_pointed_out(tmp_path: Path) -> None:
    calm = Measurement(
        "a.heic",
        "pillow",
        "jpeg",
        3,
        width=100,
        height=100,
        wall_s=0.5,
        cpu_s=0.5,
        walls_s=(0.5, 0.5, 0.51),
        cpus_s=(0.5, 0.5, 0.5),
        peak_rss_mb=50.0,
    )
    assert noise_notes(Bench([calm], runs=3)) == []
    busy = dataclasses.replace(calm, wall_s=0.7, walls_s=(0.5, 0.7, 0.9))
    notes = noise_notes(Bench([calm, busy], runs=3))
    assert [n.split(" the ")[0] for n in notes] == ["In 1 of 2 measurements", "In 1 of 2 measurements"]
    assert "Re-run on a quiet machine" in write_report(Bench([busy], runs=3), CostModel(), tmp_path).read_text()
