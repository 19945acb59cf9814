"""``heicconv bench``: measure backends on your images and write a cost report.

The top-level ``heicconv`` command registers this through :func:`add_parser`;
``python -m heicconv.bench`` runs it on its own.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..api.terminal import StatusLine
from ..config import section
from ..config import where as config_where
from ..errors import ConfigError, HeicconvError
from .cost import ARCHS, CostModel
from .measure import Bench, run
from .month import Month, month_verdict, simulate_month
from .prices import PRICE_FACTS, PRICES_DATE, Prices, parse_price
from .report import (
    MEASUREMENT_HEADERS,
    cost_table,
    measurement_rows,
    noise_notes,
    projections,
    round_trip_notes,
    text_table,
    verdict,
    write_report,
)
from .simulate import SCALE_ON, Fleet
from .traffic import SHAPES, Traffic, parse_spec

__all__ = ["add_parser", "build_parser", "fleet_from", "main", "model_from", "run_command", "traffics_from"]

T = TypeVar("T")
DEFAULT_OUT = "bench-report"

_DESCRIPTION = f"""\
Convert each image with each backend, every measurement in a fresh process, and project what
1,000,000 conversions would cost on AWS Lambda (x86_64 and arm64, several memory sizes) and on an
always-on container. Writes report.md, bench.json and SVG charts to --out.

Defaults can be set in the config file's [bench] table (keys as the long options, with
underscores: runs, formats, memory, cold_start_fraction, ... and any price key), or as
HEICCONV_BENCH_<KEY> in the environment. Prices default to those taken {PRICES_DATE}:
""" + "\n".join(f"  {k} = {v.value:g} ({v.unit})" for k, v in PRICE_FACTS.items())


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="HEIC files, or directories to search for them")
    parser.add_argument("--backends", help="comma-separated backends (default: every known backend)")
    parser.add_argument("--formats", help="comma-separated output formats (default: jpeg)")
    parser.add_argument("--runs", type=int, help="timed conversions after the warm-up; the median is kept (default 3)")
    parser.add_argument("--out", metavar="REPORT_DIR", help=f"where the report goes (default ./{DEFAULT_OUT})")
    parser.add_argument("--memory", help="Lambda memory sizes in MB, comma-separated (default 512,1024,1769,3008)")
    parser.add_argument("--archs", help="Lambda and container architectures (default x86_64,arm64)")
    parser.add_argument("--cold-start-fraction", type=float, help="share of Lambda requests that are cold (0.01)")
    parser.add_argument("--memory-headroom", type=float, help="flag Lambda sizes below this x peak memory (1.5)")
    parser.add_argument("--utilisation", type=float, help="how busy the container is, 0 to 1 (default 0.5)")
    parser.add_argument("--container-vcpu", type=float, help="container vCPUs (default 1)")
    parser.add_argument("--container-memory-gb", type=float, help="container memory in GB (default 2)")
    parser.add_argument("--timeout", type=float, help="seconds a single measurement may take (default 900)")
    parser.add_argument(
        "--price", action="append", default=[], metavar="KEY=VALUE", help="override a price (repeatable)"
    )
    parser.add_argument(
        "--from-json", metavar="BENCH_JSON", help="re-project the measurements of an earlier bench.json instead"
    )
    month = parser.add_argument_group(
        "a month of traffic",
        "Simulate a month, minute by minute, on every route: cost, time to the converted object, cold starts, "
        "queues. Shapes: " + ", ".join(SHAPES) + " (parameters as SHAPE:KEY=VALUE,...), or a CSV of requests "
        "per minute or per hour (columns timestamp,requests). See docs/bench.md.",
    )
    month.add_argument(
        "--traffic", action="append", default=None, metavar="SHAPE|CSV", help="a traffic to simulate (repeatable)"
    )
    month.add_argument("--volume", metavar="N", help="requests a month for named shapes (default 1000000; 5e6 works)")
    month.add_argument(
        "--keep-warm-min", type=int, metavar="MIN", help="minutes an idle Lambda environment stays warm (10)"
    )
    month.add_argument("--concurrency-limit", type=int, metavar="N", help="Lambda concurrency limit (1000)")
    month.add_argument("--provisioned", type=int, metavar="N", help="Lambda provisioned concurrency (0)")
    month.add_argument(
        "--workers", type=int, metavar="N", help="conversions a container task runs at once (one a vCPU)"
    )
    month.add_argument("--min-tasks", type=int, metavar="N", help="container tasks always running (1)")
    month.add_argument("--max-tasks", type=int, metavar="N", help="most container tasks (1000)")
    month.add_argument("--scale-on", choices=SCALE_ON, help="autoscale on cpu (ECS target tracking) or queue (cpu)")
    month.add_argument(
        "--scale-target", type=float, metavar="SHARE", help="CPU or capacity share the autoscaler aims at (0.7)"
    )
    month.add_argument("--scale-out-delay-min", type=int, metavar="MIN", help="minutes before a new task serves (3)")
    month.add_argument(
        "--scale-in-min", type=int, metavar="MIN", help="minutes of wanting fewer tasks before scaling in (15)"
    )


def build_parser(prog: str = "heicconv bench") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _configure(parser)
    return parser


def add_parser(subparsers: Any) -> None:
    """Register ``bench`` on the top-level command's sub-parsers."""
    parser = subparsers.add_parser(
        "bench",
        help="measure backends on your images and project Lambda and container costs",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _configure(parser)
    parser.set_defaults(func=run_command)


def _where(key: str) -> str:
    return config_where("bench", key)


def _setting(
    args: argparse.Namespace, table: dict[str, Any], key: str, convert: Callable[[Any, str], T], default: T
) -> T:
    """The command line's value, else the [bench] table's (checked, naming its source), else ``default``."""
    value = getattr(args, key, None)
    if value is not None:
        return convert(value, f"--{key.replace('_', '-')}")
    if key in table:
        return convert(table[key], f"{key} (in {_where(key)})")
    return default


def _names(value: Any, where: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise _bad(where, "a comma-separated string or a list of strings", value)
    names = tuple(i.strip() for i in items if i.strip())
    if not names:
        raise _bad(where, "at least one name", value)
    return names


def _ints(value: Any, where: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(str(n).strip()) for n in (value.split(",") if isinstance(value, str) else value))
    except (TypeError, ValueError):
        raise _bad(where, "whole numbers", value) from None
    if not numbers or any(n <= 0 for n in numbers):
        raise _bad(where, "positive whole numbers", value)
    return numbers


def _number(low: float, high: float, low_open: bool = False) -> Callable[[Any, str], float]:
    def convert(value: Any, where: str) -> float:
        try:
            x = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            x = math.nan
        ok = math.isfinite(x) and (x > low if low_open else x >= low) and x <= high
        if not ok:
            raise _bad(where, f"a number {'>' if low_open else '>='} {low:g} and <= {high:g}", value)
        return x

    return convert


def _count(value: Any, where: str) -> int:
    try:
        n = int(value) if not isinstance(value, bool) else 0
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise _bad(where, "a whole number >= 1", value)
    return n


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(where, "a path", value)
    return value


def _bad(where: str, expected: str, got: Any) -> ConfigError:
    return ConfigError(f"{where}: expected {expected}, got {got!r}")


def model_from(args: argparse.Namespace, table: dict[str, Any] | None = None) -> CostModel:
    """The cost model from the command line, then the ``[bench]`` table, then the defaults."""
    table = section("bench") if table is None else table
    base = CostModel()
    archs = _setting(args, table, "archs", _names, base.archs)
    for arch in archs:
        if arch not in ARCHS:
            raise _bad("--archs", f"one of {', '.join(ARCHS)}", arch)
    prices = Prices()
    for key in PRICE_FACTS:
        if key in table:
            prices = prices.replace(_where(key), **{key: _number(0, math.inf)(table[key], f"{key} (in {_where(key)})")})
    for text in args.price:
        key, value = parse_price(text)
        prices = prices.replace("the command line (--price)", **{key: value})
    return CostModel(
        memory_mb=_setting(args, table, "memory", _ints, base.memory_mb),
        archs=archs,
        cold_start_fraction=_setting(args, table, "cold_start_fraction", _number(0, 1), base.cold_start_fraction),
        memory_headroom=_setting(args, table, "memory_headroom", _number(1, 100), base.memory_headroom),
        container_vcpu=_setting(args, table, "container_vcpu", _number(0, 192, True), base.container_vcpu),
        container_memory_gb=_setting(
            args, table, "container_memory_gb", _number(0, 1024, True), base.container_memory_gb
        ),
        utilisation=_setting(args, table, "utilisation", _number(0, 1, True), base.utilisation),
        prices=prices,
    )


#: Fleet settings: the option (and [bench] key) -> the Fleet field.
_FLEET_KEYS = (
    "keep_warm_min",
    "concurrency_limit",
    "provisioned",
    "workers",
    "min_tasks",
    "max_tasks",
    "scale_on",
    "scale_target",
    "scale_out_delay_min",
    "scale_in_min",
)


def _whole(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _bad(where, "a whole number", value)
    try:
        return int(value)
    except ValueError:
        raise _bad(where, "a whole number", value) from None


def _scale_on(value: Any, where: str) -> str:
    if value not in SCALE_ON:
        raise _bad(where, f"one of {', '.join(SCALE_ON)}", value)
    return str(value)


def fleet_from(args: argparse.Namespace, table: dict[str, Any] | None = None) -> Fleet:
    """The simulation's fleet settings from the command line, then the ``[bench]`` table, then the defaults."""
    table = section("bench") if table is None else table
    values: dict[str, Any] = {}
    for key in _FLEET_KEYS:
        convert: Callable[[Any, str], Any] = (
            _scale_on if key == "scale_on" else _number(0, 1, True) if key == "scale_target" else _whole
        )
        value = _setting(args, table, key, convert, None)
        if value is not None:
            values[key] = value
    try:
        return Fleet(**values)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (from the command line or the [bench] table)") from None


def _volume(value: Any, where: str) -> float:
    return _number(1, 1e12)(value, where)


def traffics_from(args: argparse.Namespace, table: dict[str, Any] | None = None) -> list[Traffic]:
    """Each ``--traffic`` (or the ``[bench]`` table's ``traffic``) as a :class:`Traffic`."""
    table = section("bench") if table is None else table
    specs: tuple[str, ...] = ()
    if args.traffic:
        specs = tuple(args.traffic)
    elif "traffic" in table:
        specs = _names(table["traffic"], f"traffic (in {_where('traffic')})")
    volume = _setting(args, table, "volume", _volume, 1_000_000.0)
    return [parse_spec(spec, volume) for spec in specs]


_KNOWN_KEYS = frozenset(
    {
        "backends",
        "formats",
        "runs",
        "out",
        "memory",
        "archs",
        "cold_start_fraction",
        "memory_headroom",
        "utilisation",
        "container_vcpu",
        "container_memory_gb",
        "timeout",
        "traffic",
        "volume",
        *_FLEET_KEYS,
        *PRICE_FACTS,
    }
)


class _Progress:
    """``[3/12] vips pug.heic jpeg`` on one rewritten stderr line (used only when stderr is a terminal)."""

    def __init__(self) -> None:
        self.line = StatusLine(sys.stderr)

    def __call__(self, index: int, total: int, label: str) -> None:
        if label:
            self.line.show(f"[{index}/{total}] {label}")
        else:
            self.line.clear()


def run_command(args: argparse.Namespace) -> int:
    """Run ``heicconv bench`` with parsed arguments; returns the exit status."""
    try:
        table = section("bench")
        for key in table:
            if key not in _KNOWN_KEYS:
                known = ", ".join(sorted(_KNOWN_KEYS))
                raise ConfigError(f"{key}: unknown key (in {_where(key)}); known keys: {known}")
        model = model_from(args, table)
        out = Path(_setting(args, table, "out", _text, DEFAULT_OUT))
        traffics = traffics_from(args, table)
        fleet = fleet_from(args, table)
        if args.from_json:
            bench = _load(Path(args.from_json))
        else:
            if not args.paths:
                raise _bad("PATH", "at least one image or directory", "")
            bench = run(
                args.paths,
                backends=_setting(args, table, "backends", _names, None),
                formats=_setting(args, table, "formats", _names, ("jpeg",)),
                runs=_setting(args, table, "runs", _count, 3),
                timeout=_setting(args, table, "timeout", _number(0, math.inf, True), 900.0),
                progress=_Progress() if sys.stderr.isatty() else None,
            )
        projs = projections(bench, model)
        months = [simulate_month(projs, t, fleet, model) for t in traffics] if projs else []
        report = write_report(bench, model, out, months)
    except (HeicconvError, OSError, ValueError) as exc:
        print(f"heicconv bench: error: {exc}", file=sys.stderr)
        return 2
    _print_summary(bench, model, report, months)
    return 0 if bench.backends() else 1


def _load(path: Path) -> Bench:
    try:
        return Bench.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad(
            f"--from-json {path}", "a bench.json written by heicconv bench", f"{type(exc).__name__}: {exc}"
        ) from exc


def _print_summary(bench: Bench, model: CostModel, report: Path, months: Sequence[Month] = ()) -> None:
    rows = measurement_rows(bench.measurements)
    if rows:
        print(text_table(MEASUREMENT_HEADERS, rows))
    for note in round_trip_notes(bench):
        print(f"note: {note}")
    for note in noise_notes(bench):
        print(f"note: {note}")
    for name, why in bench.unavailable.items():
        print(f"not measured: {name}: {why}")
    for m in bench.measurements:
        if not m.ok:
            print(f"failed: {m.backend} {m.name} -> {m.format}: {m.error}")
    projs = projections(bench, model)
    if projs:
        print()
        print("Cost per 1,000,000 conversions (USD):")
        print(text_table(*cost_table(projs)))
    print()
    for line in verdict(projs, model, list(bench.remotes())):
        print("- " + line.replace("**", ""))
    for month in months:
        print(
            f"\nA month of {month.traffic.label} traffic ({month.traffic.source}; simulated in {month.seconds:.1f} s):"
        )
        for line in month_verdict(month):
            print("- " + line.replace("**", ""))
    print(f"\nreport: {report}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m heicconv.bench``: the same as ``heicconv bench``."""
    return run_command(build_parser().parse_args(argv))
