"""Traffic for the simulator: the named shapes, and the CSV reader that refuses what it cannot read."""

from __future__ import annotations

from pathlib import Path

import pytest

from heicconv.bench.traffic import MINUTES_PER_MONTH, SHAPES, from_counts, parse_spec, read_csv, shape
from heicconv.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "uploads.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_of_minutes_is_read_as_given_and_gaps_count_nothing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Timestamp,Requests,Unit\n2026-11-02T09:00:00Z,5,Count\n2026-11-02T09:01:00Z,7,Count\n"
        "2026-11-02T09:04:00Z,1,Count\n",
    )
    t = read_csv(path)
    assert t.counts == (5, 7, 0, 0, 1)
    assert t.minutes == 5 and t.total == 13
    assert t.per_month == pytest.approx(13 * MINUTES_PER_MONTH / 5)
    assert "5 rows" not in t.source and "3 rows, one a minute" in t.source


def test_an_hourly_csv_is_spread_over_its_minutes(tmp_path: Path) -> None:
    # Unix seconds and CloudWatch's column name "Sum" work too.
    t = read_csv(write(tmp_path, "time,sum\n1764057600,125\n1764061200,60\n"))
    assert t.minutes == 120
    assert t.counts[:60] == (3,) * 5 + (2,) * 55 and t.counts[60:] == (1,) * 60


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty; expected a header row"),
        ("when,requests\n2026-11-02T09:00:00Z,5\n", "line 1: no time column"),
        ("timestamp,hits\n2026-11-02T09:00:00Z,5\n", "line 1: no requests column"),
        ("timestamp,requests\n", "no rows after the header"),
        ("timestamp,requests\n2026-11-02T09:00:00Z,five\n", "line 2: requests must be a whole number >= 0, got 'five'"),
        ("timestamp,requests\n2026-11-02T09:00:00Z,-3\n", "line 2: requests must be a whole number >= 0, got '-3'"),
        ("timestamp,requests\n2026-11-02T09:00:00Z,2.5\n", "line 2: requests must be a whole number >= 0"),
        ("timestamp,requests\nyesterday,5\n", "line 2: time 'yesterday' is neither ISO 8601"),
        ("timestamp,requests\n2026-11-02T09:00:00Z\n", "line 2: expected 2 columns, got 1"),
        (
            "timestamp,requests\n2026-11-02T09:01:00Z,5\n2026-11-02T09:00:00Z,5\n",
            "line 3: the rows must be in time order",
        ),
        ("timestamp,requests\n2026-11-02T09:00:00Z,5\n2026-11-02T09:00:30Z,5\n", "the smallest step is 30 s"),
        (
            "timestamp,requests\n2026-11-02T09:00:00Z,5\n2026-11-02T10:00:00Z,5\n2026-11-02T11:30:00Z,5\n",
            "not a whole number of 3600 s after the one before",
        ),
        ("timestamp,requests\n2026-11-02T09:00:00Z,0\n2026-11-02T09:01:00Z,0\n", "every row counts 0 requests"),
    ],
)
def test_a_malformed_csv_is_refused_with_where_and_why(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        read_csv(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_missing_file_and_an_unknown_shape_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a shape"):
        parse_spec(str(tmp_path / "nope.csv"), 1e6)
    with pytest.raises(ConfigError, match="unknown parameter 'burst'; its parameters: bursts, minutes, share, seed"):
        parse_spec("bursty:burst=3", 1e6)
    with pytest.raises(ConfigError, match="expected KEY=NUMBER, got 'share=lots'"):
        parse_spec("bursty:share=lots", 1e6)
    with pytest.raises(ConfigError, match="expected 0 <= start < end <= 24"):
        shape("office-hours", 1e6, start=18, end=9)
    with pytest.raises(ConfigError, match="the monthly volume must be a number > 0"):
        shape("steady", 0)


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_shape_carries_its_monthly_volume(name: str) -> None:
    t = shape(name, 2_000_000)
    assert t.minutes == MINUTES_PER_MONTH
    assert sum(t.rates) == pytest.approx(2_000_000)
    assert t.total == pytest.approx(2_000_000, rel=0.01)  # Poisson draws around the rates
    assert shape(name, 2_000_000).counts == t.counts  # the same seed, the same month


def test_the_shapes_put_their_traffic_where_they_say() -> None:
    day = 24 * 60
    office = shape("office-hours", 1e6)
    # Monday 10:00 against Monday 03:00 and Saturday 10:00: 20 times the rate (off = 0.05).
    assert office.rates[10 * 60] == pytest.approx(20 * office.rates[3 * 60])
    assert office.rates[10 * 60] == pytest.approx(20 * office.rates[5 * day + 10 * 60])
    night = shape("nightly-backfill", 1e6)
    assert sum(night.rates[60:180]) == pytest.approx(0.8 * 1e6 / 30 + 0.2 * 1e6 / 30 * 120 / day)
    bursty = shape("bursty", 1e6, minutes=10, share=0.5)
    assert sorted(bursty.rates, reverse=True)[299] > 100 * min(bursty.rates)  # 30 bursts of 10 minutes


def test_scaling_a_traffic_keeps_its_shape() -> None:
    t = from_counts([0, 10, 30])
    scaled = t.at_volume(4 * MINUTES_PER_MONTH / 3 * 40)
    assert scaled.rates == (0.0, 40.0, 120.0)
    assert scaled.counts[0] == 0
    with pytest.raises(ConfigError, match="negative"):
        from_counts([1, -1])


def test_docs_bench_md_lists_every_shape_with_its_parameters() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "bench.md").read_text(encoding="utf-8")
    for name, (params, _) in SHAPES.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        for key, value in params.items():
            assert f"`{key}={value:g}`" in row, (name, key)
