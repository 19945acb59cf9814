"""heicconv.config.logs's pieces that no route uses yet: the CloudWatch Embedded Metric Format line."""

from __future__ import annotations

import json

import pytest

from heicconv.config.logs import emf_line


def test_an_emf_line_declares_each_metric_and_carries_its_dimensions() -> None:
    line = json.loads(
        emf_line(
            "heicconv",
            {"backend": "pillow", "output_format": "jpeg"},
            {"Conversions": (1, "Count"), "ConversionSeconds": (0.42, "Seconds"), "OutputBytes": (4044, "Bytes")},
            {"request_id": "c6f1", "outcome": "ok"},
            timestamp_ms=1_796_648_115_502,
        )
    )
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert line["_aws"]["Timestamp"] == 1_796_648_115_502 and directive["Namespace"] == "heicconv"
    assert directive["Dimensions"] == [["backend", "output_format"]]
    declared = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert declared == {"Conversions": "Count", "ConversionSeconds": "Seconds", "OutputBytes": "Bytes"}
    # CloudWatch reads each declared name and dimension from the line's top level.
    assert [line[name] for name in declared] == [1, 0.42, 4044]
    assert (line["backend"], line["output_format"], line["request_id"]) == ("pillow", "jpeg", "c6f1")


def test_an_emf_unit_that_is_not_cloudwatchs_is_refused_here() -> None:
    with pytest.raises(ValueError, match="Photos"):
        emf_line("heicconv", {}, {"Converted": (3, "Photos")})
