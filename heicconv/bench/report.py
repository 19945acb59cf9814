"""The report: tables for the terminal, a Markdown file with SVG charts, and the raw JSON beside it."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .charts import Bar, bar_chart
from .cost import HOURS_PER_MONTH, CostModel, Projection, project
from .markdown import in_words, table
from .measure import Bench, Measurement
from .month import ASSUMPTIONS, Month, month_charts, month_markdown
from .prices import LAMBDA_PACKAGES, PRICES_DATE, LambdaLimits
from .simulate import lambda_package

__all__ = [
    "MEASUREMENT_HEADERS",
    "cost_table",
    "limit_notes",
    "measurement_rows",
    "noise_notes",
    "projections",
    "render_markdown",
    "round_trip_notes",
    "text_table",
    "verdict",
    "write_report",
]

MEASUREMENT_HEADERS = (
    "image",
    "MP",
    "input MB",
    "backend",
    "format",
    "timed",
    "median ms",
    "CPU ms",
    "ms/MP",
    "peak RSS MB",
    "output KB",
    "cold start ms",
)
MB = 1024 * 1024


def measurement_rows(measurements: Sequence[Measurement]) -> list[list[str]]:
    """One row per successful measurement, formatted as the tables show it."""
    return [
        [
            m.name,
            f"{m.megapixels:.2f}",
            f"{m.input_bytes / MB:.2f}",
            m.backend,
            m.format,
            "round trip" if m.remote else "in process",
            f"{m.wall_s * 1000:.1f}",
            f"{m.cpu_s * 1000:.1f}",
            f"{m.ms_per_mp:.1f}",
            f"{m.peak_rss_mb:.1f}",
            f"{m.output_bytes / 1024:.1f}",
            f"{m.cold_start_s * 1000:.0f}",
        ]
        for m in measurements
        if m.ok
    ]


def projections(bench: Bench, model: CostModel) -> list[Projection]:
    """One projection per local backend that measured something.

    A remote backend's measurement is a round trip seen from here (this process's CPU and memory, the
    wire, the remote's time): what the remote itself costs is measured by running bench where it runs.
    """
    return [project(bench.workload(b), model) for b in bench.local_backends()]


#: What a remote backend's round trip includes besides heicconv's own header read and limit check here.
_ROUND_TRIPS = {
    "http": "one HTTP POST of the input with every option in its query, the service's conversion on a warm "
    "worker, and the image read back",
    "lambda": "one synchronous Invoke whose JSON event carries the input base64-encoded (staged in S3 instead when "
    "it is over the 6 MB payload and lambda.staging_bucket is set), the function's conversion, and the image "
    "base64-encoded in the JSON answer (or staged in S3 and fetched from there when it is too large)",
}


def round_trip_notes(bench: Bench) -> list[str]:
    """What the time of each measured remote backend includes, and what the other figures are."""
    remotes = bench.remotes()
    notes = []
    for backend, where in remotes.items():
        what = _ROUND_TRIPS.get(backend, "sending the input, the remote's conversion and reading the answer")
        notes.append(
            f"{backend} ({where}): the time is the round trip as the application sees it: reading the header and "
            f"checking the limits here, then {what}."
        )
    if remotes:
        notes.append(
            "For remote backends, CPU ms and peak RSS are the calling process's alone, and the cold start is a "
            "fresh application's first conversion (its first one also asks the remote's /health), not a cold start "
            "of the remote. No cost is projected from them: run bench where the remote runs, with its local backend."
        )
    return notes


def _money(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"${x:,.2f}" if x >= 0.1 else f"${x:.4f}"


def _pct(x: float) -> str:
    return "never (> 100%)" if not math.isfinite(x) or x > 1 else f"{x:.1%}"


def cost_table(projs: Sequence[Projection]) -> tuple[list[str], list[list[str]]]:
    """Routes down, backends across: USD per 1M conversions, with a warning where a route would fail."""
    headers = ["route", *(p.workload.backend for p in projs)]
    rows = []
    if projs:
        for arch in dict.fromkeys(e.arch for e in projs[0].lambdas):
            rows.append([f"Lambda {arch} package", *(lambda_package(p.workload.backend, arch) for p in projs)])
    for i, lam in enumerate(projs[0].lambdas if projs else ()):
        rows.append([lam.label, *(_cost_cell(p.lambdas[i].per_million, p.lambdas[i].flags) for p in projs)])
    for i, box in enumerate(projs[0].containers if projs else ()):
        rows.append([box.label, *(_cost_cell(p.containers[i].per_million, p.containers[i].flags) for p in projs)])
    return headers, rows


def _cost_cell(per_million: float, flags: Sequence[str]) -> str:
    return _money(per_million) + (" ⚠ " + "; ".join(flags) if flags else "")


def break_even_table(projs: Sequence[Projection]) -> tuple[list[str], list[list[str]]]:
    """For each Lambda configuration: the container (same architecture) utilisation above which it is cheaper."""
    headers = ["Lambda route", *(f"{p.workload.backend}" for p in projs)]
    rows = []
    for i, lam in enumerate(projs[0].lambdas if projs else ()):
        rows.append([lam.label, *(_pct(p.break_even(p.lambdas[i])) for p in projs)])
    return headers, rows


def _backend_verdict(p: Projection, model: CostModel) -> str:
    w = p.workload
    text = (
        f"**{w.backend}**: {w.wall_s * 1000:.0f} ms a conversion (CPU {w.cpu_s * 1000:.0f} ms), "
        f"peak memory {w.peak_rss_mb:.0f} MB, a fresh process adds {w.cold_extra_s * 1000:.0f} ms. "
    )
    lam = p.cheapest_lambda()
    if lam is None:
        need = math.ceil(model.memory_headroom * w.peak_rss_mb)
        box = p.cheapest_container()
        return text + (
            f"None of the Lambda sizes tried leaves {model.memory_headroom:g}x headroom over the peak memory: "
            + (
                f"try `--memory {need}` or more. "
                if need <= model.limits.memory_max_mb
                else f"it needs {need:,} MB, more than Lambda's {model.limits.memory_max_mb:,} MB. "
            )
            + f"A container ({box.label}) costs {_money(box.per_million)} per 1M."
        )
    text += (
        f"Cheapest Lambda: {lam.label}, {_money(lam.per_million)} per 1M conversions, "
        f"{lam.duration_s * 1000:.0f} ms each"
    )
    fastest = p.fastest_lambda()
    if fastest is not None and fastest.duration_s < lam.duration_s * 0.9:
        text += f"; for {_money(fastest.per_million)}, {fastest.label} takes {fastest.duration_s * 1000:.0f} ms"
    text += ". "
    box = p.container(lam.arch)
    u = p.break_even(lam)
    if u > 1:
        return text + (
            f"A container ({box.arch}, {box.vcpu:g} vCPU, {box.memory_gb:g} GB, {_money(box.monthly)} a month) "
            f"costs more per conversion even when 100% busy, so **Lambda is cheaper at every volume**."
        )
    capacity_month = box.per_hour_capacity * HOURS_PER_MONTH
    text += (
        f"One always-on container ({box.arch}, {box.vcpu:g} vCPU, {box.memory_gb:g} GB) costs "
        f"{_money(box.monthly)} a month and can do about {in_words(capacity_month)} conversions a month flat out. "
        f"**Below about {in_words(u * capacity_month)} conversions a month Lambda is cheaper; above it the container "
        f"is** (break-even at {u:.1%} utilisation). At the {model.utilisation:.0%} utilisation assumed, the "
        f"container costs {_money(box.per_million)} per 1M"
    )
    return text + ("." if model.utilisation >= u else ", more than Lambda: it pays only if kept busier.")


def verdict(projs: Sequence[Projection], model: CostModel, remotes: Sequence[str] = ()) -> list[str]:
    """Plain sentences: which route is cheaper for the measured workload, at which volume."""
    if not projs and remotes:
        return [f"Only round trips to remote backends ({', '.join(remotes)}) were measured: no cost is projected."]
    if not projs:
        return ["Nothing was measured, so there is nothing to compare."]
    lines = [_backend_verdict(p, model) for p in projs]
    lams = [(lam, p) for p in projs if (lam := p.cheapest_lambda()) is not None]
    box, bp = min(((p.cheapest_container(), p) for p in projs), key=lambda t: t[0].per_million)
    boxed = (
        f"**{bp.workload.backend} in a container** ({box.label}, {_money(box.per_million)} per 1M, "
        f"{_money(box.monthly)} a month per task)"
    )
    if not lams:
        lines.append(f"No Lambda size tried would hold the workload; the cheapest route is {boxed}.")
        return lines
    lam, lp = min(lams, key=lambda t: t[0].per_million)
    lines.append(
        f"Cheapest Lambda route: **{lp.workload.backend} on {lam.label}** ({_money(lam.per_million)} per 1M, "
        "nothing when idle): the choice for low or bursty volume."
    )
    if box.per_million < lam.per_million:
        lines.append(f"At steady volume that keeps a container {box.utilisation:.0%} busy, {boxed} is cheaper.")
    else:
        lines.append(
            f"Even kept {box.utilisation:.0%} busy, the cheapest container, {boxed}, costs more than that: "
            "**Lambda is the cheaper route** unless the container can be kept busier."
        )
    return lines


def limit_notes(bench: Bench, projs: Sequence[Projection], model: CostModel) -> list[str]:
    """Where Lambda's hard limits bite for the images measured."""
    lim = model.limits
    notes = []
    ok = [m for m in bench.measurements if m.ok]
    if ok:
        big_in = sorted({m.name for m in ok if m.input_bytes > lim.sync_image_bytes})
        big_out = sorted({f"{m.name} as {m.format}" for m in ok if m.output_bytes > lim.sync_image_bytes})
        largest = max(m.input_bytes for m in ok)
        notes.append(
            f"Synchronous payload: {lim.sync_payload_bytes / MB:g} MB each way, about "
            f"{lim.sync_image_bytes / MB:.1f} MB of image after base64. The largest input measured is "
            f"{largest / MB:.2f} MB"
            + (f"; too large to send inline: {', '.join(big_in)}" if big_in else ", which fits")
            + (f"; outputs too large to return inline: {', '.join(big_out)}" if big_out else "")
            + ". Larger images need an S3 event (or a presigned upload) and, for big outputs, "
            "response streaming (200 MB) or writing the result to S3."
        )
    for p in projs:
        w = p.workload
        need = model.memory_headroom * w.peak_rss_mb
        if need > lim.memory_max_mb:
            notes.append(
                f"Memory, {w.backend}: {model.memory_headroom:g} x peak {w.peak_rss_mb:.0f} MB exceeds Lambda's "
                f"{lim.memory_max_mb:,} MB: no Lambda size can run it."
            )
        slowest = max((e.duration_s for e in p.lambdas), default=0.0)
        if slowest + w.cold_extra_s > lim.timeout_s:
            notes.append(f"Timeout, {w.backend}: some sizes would exceed Lambda's {lim.timeout_s:.0f} s limit.")
    notes += [note for p in projs if (note := package_note(p.workload.backend, lim))]
    notes.append(
        f"Memory: {lim.memory_min_mb:,} to {lim.memory_max_mb:,} MB ({lim.max_vcpus} vCPUs at the top); timeout "
        f"{lim.timeout_s:.0f} s. Sizes flagged ⚠ have less than {model.memory_headroom:g}x the measured peak memory."
    )
    return notes


def package_note(backend: str, limits: LambdaLimits) -> str:
    """How ``backend`` is deployed on Lambda and how its package compares with the size limits."""
    package = LAMBDA_PACKAGES.get(backend)
    if package is None:
        return (
            f"Package, {backend}: unknown. heicconv does not know how this backend deploys on Lambda: a ZIP on the "
            f"managed runtime only if it and its libraries fit {limits.package_unzipped_mb:.0f} MB unzipped, "
            "otherwise a container image; measure its cold start from that package."
        )
    if package.kind != "zip":
        return f"Package, {backend}: a container image ({package.how}); the ZIP route cannot run it."
    sizes = ", ".join(f"{package.unzipped_mb[a]:.0f} MB on {a}" for a in package.unzipped_mb)
    largest = max(package.unzipped_mb.values())
    text = (
        f"Package, {backend}: a ZIP (`{package.how}`), unzipped {sizes} of the {limits.package_unzipped_mb:.0f} MB "
        f"allowed (at least {limits.package_unzipped_mb - largest:.0f} MB left for layers)"
    )
    big = [a for a, mb in package.zipped_mb.items() if mb > limits.direct_upload_zipped_mb]
    if big:
        text += (
            f"; zipped it is over the {limits.direct_upload_zipped_mb:.0f} MB of a direct upload on "
            f"{' and '.join(big)}, so deploy it from S3"
        )
    return text + "."


def noise_notes(bench: Bench) -> list[str]:
    """Signs that the machine was busy while measuring, which make the timings (and the costs) less certain."""
    ok = [m for m in bench.measurements if m.ok]
    waiting = [m for m in ok if m.wall_s > 1.2 * m.cpu_s and not m.remote]  # a round trip waits by design
    spread = [m for m in ok if len(m.walls_s) > 1 and max(m.walls_s) > 1.25 * min(m.walls_s)]
    notes = []
    if waiting:
        notes.append(
            f"In {len(waiting)} of {len(ok)} measurements the wall time exceeded the CPU time by more than 20%: "
            "the process was waiting, most likely for a CPU busy with something else. Re-run on a quiet machine."
        )
    if spread:
        notes.append(
            f"In {len(spread)} of {len(ok)} measurements the slowest run took more than 1.25x the fastest: "
            "use more `--runs`."
        )
    return notes


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned plain-text table for the terminal."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _summary_rows(bench: Bench, projs: Sequence[Projection]) -> list[list[str]]:
    rows = []
    for p in projs:
        w = p.workload
        ok = [m for m in bench.measurements if m.ok and m.backend == w.backend]
        rows.append(
            [
                w.backend,
                str(w.conversions),
                f"{statistics.fmean(m.ms_per_mp for m in ok):.1f}",
                f"{w.wall_s * 1000:.1f}",
                f"{w.cpu_s * 1000:.1f}",
                f"{w.peak_rss_mb:.1f}",
                f"{statistics.median(m.base_rss_mb for m in ok):.1f}",
                f"{statistics.median(m.cold_start_s for m in ok) * 1000:.0f}",
                f"{statistics.median(m.python_s for m in ok) * 1000:.0f}",
                f"{statistics.median(m.import_s for m in ok) * 1000:.0f}",
                f"{statistics.median(m.first_s for m in ok) * 1000:.0f}",
                f"{w.cold_extra_s * 1000:.0f}",
                ", ".join(f"{k} {v}" for k, v in bench.versions.get(w.backend, {}).items()),
            ]
        )
    return rows


SUMMARY_HEADERS = (
    "backend",
    "conversions",
    "mean ms/MP",
    "mean ms",
    "mean CPU ms",
    "max peak RSS MB",
    "base RSS MB",
    "median cold start ms",
    "interpreter ms",
    "import heicconv ms",
    "first conversion ms",
    "cold-start overhead ms",
    "versions",
)


def model_archs(projs: Sequence[Projection]) -> list[str]:
    """The architectures projected, in order."""
    return list(dict.fromkeys(e.arch for e in projs[0].lambdas)) if projs else []


def _warning(flags: Sequence[str]) -> str:
    return "would fail: " + flags[0].split(":")[0]


def _charts(bench: Bench, projs: Sequence[Projection]) -> dict[str, str]:
    ok = [m for m in bench.measurements if m.ok]
    backends = bench.backends()
    local = bench.local_backends()
    per_mp = []
    for image in dict.fromkeys(f"{m.name} → {m.format}" for m in ok):
        bars = [(m.backend, m.ms_per_mp) for m in ok if f"{m.name} → {m.format}" == image]
        per_mp.append((image, bars))
    memory = []
    for image in dict.fromkeys(m.name for m in ok):
        bars = []
        for b in local:  # a remote backend's peak is the caller's, not the conversion's
            peaks = [m.peak_rss_mb for m in ok if m.name == image and m.backend == b]
            if peaks:
                bars.append((b, max(peaks)))
        memory.append((image, bars))
    # One group a backend: its cheapest Lambda size on each architecture, and the container; every size is in
    # the table (a chart per memory size answers no question).
    cost = []
    for p in projs:
        routes: list[Bar] = []
        sizes: list[int] = []
        for arch in dict.fromkeys(e.arch for e in p.lambdas):
            candidates = [e for e in p.lambdas if e.arch == arch]
            best = min([e for e in candidates if not e.flags] or candidates, key=lambda e: round(e.per_million, 6))
            name = f"Lambda {arch}"
            routes.append((name, best.per_million, _warning(best.flags)) if best.flags else (name, best.per_million))
            sizes.append(best.memory_mb)
        for c in p.containers:
            name = f"container {c.arch}"
            routes.append((name, c.per_million, _warning(c.flags)) if c.flags else (name, c.per_million))
        box = p.containers[0] if p.containers else None
        package = lambda_package(p.workload.backend, p.lambdas[0].arch) if p.lambdas else ""
        mb = "/".join(str(m) for m in dict.fromkeys(sizes))
        label = f"{p.workload.backend} (Lambda: {package}, {mb} MB" + (
            f"; container: {box.vcpu:g} vCPU {box.memory_gb:g} GB, {box.utilisation:.0%} busy)" if box else ")"
        )
        cost.append((label, routes))
    return {
        "time_per_megapixel.svg": bar_chart(
            "Decode + encode time per megapixel" + (" (remote backends: the round trip)" if local != backends else ""),
            "ms/MP",
            per_mp,
            backends,
        ),
        "peak_memory.svg": bar_chart("Peak resident memory of a worker process", "MB", memory, backends),
        "cost_per_million.svg": bar_chart(
            "Cost per 1,000,000 conversions: cheapest Lambda size, always-on container",
            "USD",
            cost,
            [f"{kind} {arch}" for kind in ("Lambda", "container") for arch in model_archs(projs)],
            label_width=130,
        ),
    }


def render_markdown(
    bench: Bench, model: CostModel, charts: Sequence[str] = (), months: Sequence[tuple[Month, Sequence[str]]] = ()
) -> str:
    """The whole report as Markdown (``charts``: file names of the SVGs beside it; ``months``: each simulated
    traffic with its charts' file names)."""
    projs = projections(bench, model)
    out = _opening(bench, projs, model)
    for month, names in months:
        out += month_markdown(month, names)
    if months:
        out += ["### What the simulation assumes", "", *[f"- {a}" for a in ASSUMPTIONS], ""]
    out += _measurements_section(bench, projs, model)
    if charts:
        out += ["## Charts", ""] + [f"![{c.rsplit('.', 1)[0].replace('_', ' ')}]({c})\n" for c in charts]
    out += _cost_section(projs, model)
    return "\n".join(out)


def _opening(bench: Bench, projs: Sequence[Projection], model: CostModel) -> list[str]:
    """The title, where and how the bench measured, and the verdict."""
    env = bench.environment
    return [
        "# heicconv bench",
        "",
        f"Measured {env.get('date', '')} on {env.get('cpu', '?')} ({env.get('cpu_count', '?')} CPUs, "
        f"{env.get('machine', '?')}), Python {env.get('python', '?')}, heicconv {env.get('heicconv', '?')}. "
        f"Each (image, backend, format) ran in a fresh process: one warm-up conversion, then the median of "
        f"{bench.runs} run(s).",
        "",
        "## Verdict",
        "",
        *[f"- {line}" for line in verdict(projs, model, list(bench.remotes()))],
        "",
    ]


def _measurements_section(bench: Bench, projs: Sequence[Projection], model: CostModel) -> list[str]:
    """Lambda's limits, every measurement, the per-backend workloads, and what could not be measured."""
    out = [
        "## Where Lambda's limits bite",
        "",
        *[f"- {line}" for line in limit_notes(bench, projs, model)],
        "",
        "## Measurements",
        "",
        table(MEASUREMENT_HEADERS, measurement_rows(bench.measurements)),
        "",
        "Cold start: from the process start to the end of the first conversion (interpreter, `import heicconv`, "
        'the backend\'s libraries, the first conversion). Timed "in process": decode and encode here; '
        '"round trip": a remote backend, below. Raw numbers: `bench.json`.',
        *[f"\n- {note}" for note in round_trip_notes(bench)],
        *[f"\n⚠ {note}" for note in noise_notes(bench)],
        "",
        "### Per backend",
        "",
        "The workload each backend's costs below are projected from is the mean of its conversions "
        "(every image in every format, equally weighted); peak memory is the largest measured, "
        "base RSS the memory after `import heicconv`; cold-start overhead is the median of cold start minus "
        "the warm median, what a cold Lambda request pays on top.",
        "",
        table(SUMMARY_HEADERS, _summary_rows(bench, projs)),
        "",
    ]
    failed = [m for m in bench.measurements if not m.ok]
    if bench.unavailable or failed:
        out += ["### Not measured", ""]
        out += [f"- {name}: {why}" for name, why in bench.unavailable.items()]
        out += [f"- {m.backend}, {m.name} → {m.format}: {m.error}" for m in failed]
        out.append("")
    return out


def _cost_section(projs: Sequence[Projection], model: CostModel) -> list[str]:
    """Cost per million conversions, the break-even utilisation, and the prices they come from."""
    return [
        "## Cost per 1,000,000 conversions (USD)",
        "",
        f"Lambda: requests + GB-seconds (rounded up to 1 ms), {model.cold_start_fraction:.1%} of requests cold "
        f"(they also pay the cold-start overhead). Containers: {model.container_vcpu:g} vCPU, "
        f"{model.container_memory_gb:g} GB, billed all the time, {model.utilisation:.0%} busy.",
        "",
        table(*cost_table(projs)),
        "",
        "### Break-even container utilisation",
        "",
        "Above this utilisation a container of the same architecture is cheaper than the Lambda route.",
        "",
        table(*break_even_table(projs)),
        "",
        f"## Prices used (defaults taken {PRICES_DATE})",
        "",
        table(
            ["key", "value", "unit", "source"],
            [[r["key"], f"{r['value']:g}", r["unit"], r["source"]] for r in model.prices.rows()],
        ),
        "",
        "Not modelled: the free tier, volume discounts above the first pricing tier, ephemeral storage, "
        "data transfer, API Gateway, S3 requests. Lambda arm64 is assumed as fast as the machine measured; "
        "measure on the target machine to know.",
        "",
    ]


def write_report(bench: Bench, model: CostModel, out_dir: str | Path, months: Sequence[Month] = ()) -> Path:
    """Write ``report.md``, ``bench.json`` and the SVG charts into ``out_dir``; return the Markdown path.

    ``months``: traffics simulated on the routes (:func:`heicconv.bench.month.simulate_month`), each with
    its section and charts.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    projs = projections(bench, model)
    charts = _charts(bench, projs) if bench.backends() else {}
    for name, svg in charts.items():
        (out / name).write_text(svg, encoding="utf-8")
    sections = []
    for month in months:
        drawn = month_charts(month)
        for name, svg in drawn.items():
            (out / name).write_text(svg, encoding="utf-8")
        sections.append((month, list(drawn)))
    raw: dict[str, Any] = {
        **bench.to_dict(),
        "model": model.to_dict(),
        "projections": [p.to_dict() for p in projs],
        "months": [m.to_dict() for m in months],
    }
    text = json.dumps(_finite(raw), indent=2, allow_nan=False, default=_json_default)
    (out / "bench.json").write_text(text + "\n", encoding="utf-8")
    path = out / "report.md"
    path.write_text(render_markdown(bench, model, list(charts), sections), encoding="utf-8")
    return path


def _finite(value: Any) -> Any:
    """JSON has no infinity: an unbounded figure (a route that never breaks even) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(value: object) -> Any:
    if isinstance(value, (tuple, frozenset, set)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
