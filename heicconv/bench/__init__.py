"""Measure backends on your own images and project what each deployment route would cost.

``heicconv bench PATH...`` on the command line; in Python:

>>> from heicconv.bench import CostModel, Workload, project
>>> p = project(Workload("pillow", wall_s=0.25, cpu_s=0.25, peak_rss_mb=180.0), CostModel())
>>> cheapest = p.cheapest_lambda()
>>> (cheapest.label, round(cheapest.per_million, 2)) if cheapest else None
('Lambda arm64 1769 MB', 5.96)
>>> f"{p.break_even(cheapest):.0%}" if cheapest else None
'46%'

See ``docs/bench.md`` for the model and its assumptions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cost import ContainerEstimate, CostModel, LambdaEstimate, Projection, Workload, project
    from .measure import Bench, Measurement, run
    from .prices import PRICE_FACTS, PRICES_DATE, LambdaLimits, Prices
    from .report import write_report

# Imported on first use: the worker process imports this package after its clock has started,
# and the report's modules must not count towards the cold start it measures.
_LAZY = {
    "ContainerEstimate": "cost",
    "CostModel": "cost",
    "LambdaEstimate": "cost",
    "Projection": "cost",
    "Workload": "cost",
    "project": "cost",
    "Bench": "measure",
    "Measurement": "measure",
    "run": "measure",
    "PRICE_FACTS": "prices",
    "PRICES_DATE": "prices",
    "LambdaLimits": "prices",
    "Prices": "prices",
    "write_report": "report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "PRICES_DATE",
    "PRICE_FACTS",
    "Bench",
    "ContainerEstimate",
    "CostModel",
    "LambdaEstimate",
    "LambdaLimits",
    "Measurement",
    "Prices",
    "Projection",
    "Workload",
    "project",
    "run",
    "write_report",
]
