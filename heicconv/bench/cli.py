"""``heicconv bench``: measure backends on your images and write a cost report.

The top-level ``heicconv`` command registers this through :func:`add_parser`;
``python -m heicconv.bench`` runs it on its own.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields, make_dataclass
from pathlib import Path
from typing import Any

from ..api.terminal import StatusLine
from ..config.rules import Invalid, Rule, choice, integer, text
from ..config.tables import Loaded, keys, load, setting
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

__all__ = [
    "BenchSettings",
    "add_parser",
    "build_parser",
    "fleet_from",
    "main",
    "model_from",
    "read_settings",
    "run_command",
    "traffics_from",
]

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


def _names(allowed: tuple[str, ...] = ()) -> Rule:
    """Names, as a comma-separated string or a list of strings; ``allowed``: each one of those."""

    def parse(value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise Invalid("must be a comma-separated string or a list of strings")
        names = tuple(i.strip() for i in items if i.strip())
        if not names:
            raise Invalid("must name at least one")
        if allowed and any(n not in allowed for n in names):
            raise Invalid(f"must be among {', '.join(allowed)}")
        return names

    return Rule(parse)


def _sizes() -> Rule:
    """Positive whole numbers, as a comma-separated string or a list."""

    def parse(value: Any) -> tuple[int, ...]:
        try:
            numbers = tuple(int(str(n).strip()) for n in (value.split(",") if isinstance(value, str) else value))
        except (TypeError, ValueError):
            numbers = ()
        if not numbers or any(n <= 0 for n in numbers):
            raise Invalid("must be positive whole numbers, comma-separated")
        return numbers

    return Rule(parse)


def _span(low: float, high: float, low_open: bool = False) -> Rule:
    """A finite number from ``low`` (excluded if ``low_open``) to ``high`` (``math.inf``: no upper bound)."""

    def parse(value: Any) -> float:
        try:
            x = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else math.nan
        except ValueError:
            x = math.nan
        if not (math.isfinite(x) and (x > low if low_open else x >= low) and x <= high):
            upper = f" and <= {high:g}" if math.isfinite(high) else ""
            raise Invalid(f"must be a number {'>' if low_open else '>='} {low:g}{upper}")
        return x

    return Rule(parse, arg_type=float)


_MODEL, _FLEET = CostModel(), Fleet()


@dataclass(frozen=True)
class BenchSettings:
    """``heicconv bench``'s settings: its options, then ``HEICCONV_BENCH_<KEY>``, then ``[bench]`` (prices apart)."""

    backends: tuple[str, ...] | None = setting(None, _names())  # None: every known backend
    formats: tuple[str, ...] = setting(("jpeg",), _names())
    runs: int = setting(3, integer(1))
    out: str = setting(DEFAULT_OUT, text(required=True))
    memory: tuple[int, ...] = setting(_MODEL.memory_mb, _sizes())
    archs: tuple[str, ...] = setting(_MODEL.archs, _names(ARCHS))
    cold_start_fraction: float = setting(_MODEL.cold_start_fraction, _span(0, 1))
    memory_headroom: float = setting(_MODEL.memory_headroom, _span(1, 100))
    utilisation: float = setting(_MODEL.utilisation, _span(0, 1, True))
    container_vcpu: float = setting(_MODEL.container_vcpu, _span(0, 192, True))
    container_memory_gb: float = setting(_MODEL.container_memory_gb, _span(0, 1024, True))
    timeout: float = setting(900.0, _span(0, math.inf, True))
    traffic: tuple[str, ...] = setting((), _names())
    volume: float = setting(1_000_000.0, _span(1, 1e12))
    keep_warm_min: int = setting(_FLEET.keep_warm_min, integer(0))
    concurrency_limit: int = setting(_FLEET.concurrency_limit, integer(0))
    provisioned: int = setting(_FLEET.provisioned, integer(0))
    workers: int = setting(_FLEET.workers, integer(0))
    min_tasks: int = setting(_FLEET.min_tasks, integer(0))
    max_tasks: int = setting(_FLEET.max_tasks, integer(0))
    scale_on: str = setting(_FLEET.scale_on, choice(*SCALE_ON))
    scale_target: float = setting(_FLEET.scale_target, _span(0, 1, True))
    scale_out_delay_min: int = setting(_FLEET.scale_out_delay_min, integer(0))
    scale_in_min: int = setting(_FLEET.scale_in_min, integer(0))


#: The price keys of ``[bench]`` (``lambda_x86_gb_s = 0.0000166667``), one field per price.
_BenchPrices: type[Any] = make_dataclass(
    "_BenchPrices", [(k, float, setting(v.value, _span(0, math.inf))) for k, v in PRICE_FACTS.items()], frozen=True
)

#: Fleet settings: the option (and [bench] key) -> the Fleet field.
_FLEET_KEYS = tuple(f.name for f in fields(Fleet))


def read_settings(args: argparse.Namespace) -> Loaded[BenchSettings]:
    """The command line's values over ``HEICCONV_BENCH_*`` and ``[bench]``; a bad or unknown key raises."""
    overrides = {key: getattr(args, key, None) for key in keys(BenchSettings)}
    return load(BenchSettings, "bench", overrides, others=PRICE_FACTS)


def model_from(args: argparse.Namespace, loaded: Loaded[BenchSettings] | None = None) -> CostModel:
    """The cost model from the command line, then the ``[bench]`` table, then the defaults."""
    cfg = (loaded or read_settings(args)).value
    prices = Prices()
    table = load(_BenchPrices, "bench", check_keys=False)
    for key in PRICE_FACTS:
        if key in table.given:
            prices = prices.replace(table.where(key), **{key: getattr(table.value, key)})
    for text_ in args.price:
        key, value = parse_price(text_)
        prices = prices.replace("the command line (--price)", **{key: value})
    return CostModel(
        memory_mb=cfg.memory,
        archs=cfg.archs,
        cold_start_fraction=cfg.cold_start_fraction,
        memory_headroom=cfg.memory_headroom,
        container_vcpu=cfg.container_vcpu,
        container_memory_gb=cfg.container_memory_gb,
        utilisation=cfg.utilisation,
        prices=prices,
    )


def fleet_from(args: argparse.Namespace, loaded: Loaded[BenchSettings] | None = None) -> Fleet:
    """The simulation's fleet settings from the command line, then the ``[bench]`` table, then the defaults."""
    cfg = (loaded or read_settings(args)).value
    try:
        return Fleet(**{key: getattr(cfg, key) for key in _FLEET_KEYS})
    except ConfigError as exc:
        raise ConfigError(f"{exc} (from the command line or the [bench] table)") from None


def traffics_from(args: argparse.Namespace, loaded: Loaded[BenchSettings] | None = None) -> list[Traffic]:
    """Each ``--traffic`` (or the ``[bench]`` table's ``traffic``) as a :class:`Traffic`."""
    cfg = (loaded or read_settings(args)).value
    return [parse_spec(spec, cfg.volume) for spec in cfg.traffic]


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
        loaded = read_settings(args)
        cfg = loaded.value
        model = model_from(args, loaded)
        traffics = traffics_from(args, loaded)
        fleet = fleet_from(args, loaded)
        if args.from_json:
            bench = _load(Path(args.from_json))
        else:
            if not args.paths:
                raise _bad("PATH", "at least one image or directory", "")
            bench = run(
                args.paths,
                backends=cfg.backends,
                formats=cfg.formats,
                runs=cfg.runs,
                timeout=cfg.timeout,
                progress=_Progress() if sys.stderr.isatty() else None,
            )
        projs = projections(bench, model)
        months = [simulate_month(projs, t, fleet, model) for t in traffics] if projs else []
        report = write_report(bench, model, Path(cfg.out), months)
    except (HeicconvError, OSError, ValueError) as exc:
        print(f"heicconv bench: error: {exc}", file=sys.stderr)
        return 2
    _print_summary(bench, model, report, months)
    return 0 if bench.backends() else 1


def _bad(where: str, expected: str, got: Any) -> ConfigError:
    return ConfigError(f"{where}: expected {expected}, got {got!r}")


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
