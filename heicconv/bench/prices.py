"""Prices and Lambda limits the cost model uses: documented defaults that every run can override.

Prices change, so each one carries the date it was taken and where from. Override one on the
command line (``--price lambda_x86_gb_s=0.000015``) or in the config file's ``[bench]`` table
(``lambda_x86_gb_s = 0.000015``, or ``HEICCONV_BENCH_LAMBDA_X86_GB_S`` in the environment).

>>> prices = Prices().replace(lambda_x86_gb_s=0.000015)
>>> prices.lambda_x86_gb_s, prices.lambda_arm64_gb_s
(1.5e-05, 1.33334e-05)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = [
    "LAMBDA_PACKAGES",
    "PRICES_DATE",
    "PRICE_FACTS",
    "LambdaLimits",
    "LambdaPackage",
    "Price",
    "Prices",
    "parse_price",
]

#: When the default prices were taken (AWS price list and pricing pages).
PRICES_DATE = "2026-11"


@dataclass(frozen=True)
class Price:
    """One documented default price."""

    value: float
    unit: str
    source: str


# Provisioned concurrency is not in the team's 2026-11 facts sheet: these are the AWS pricing page's
# us-east-1 figures, used only when --provisioned is set. Check them before relying on them.
_PC_SOURCE = "AWS Lambda pricing page, provisioned concurrency (us-east-1; not re-checked 2026-11)"

#: Every default price, by the key used to override it. Region us-east-2, first pricing tier.
PRICE_FACTS: dict[str, Price] = {
    "lambda_requests_per_million": Price(0.20, "USD per 1M requests", "AWS price list (us-east-2, 2026-08)"),
    "lambda_x86_gb_s": Price(0.0000166667, "USD per GB-second, x86_64", "AWS price list (first 6B GB-s a month)"),
    "lambda_arm64_gb_s": Price(0.0000133334, "USD per GB-second, arm64", "AWS price list (first 7.5B GB-s a month)"),
    "lambda_x86_provisioned_gb_s": Price(
        0.0000041667, "USD per GB-second of provisioned concurrency kept, x86_64", _PC_SOURCE
    ),
    "lambda_x86_provisioned_duration_gb_s": Price(
        0.0000097222, "USD per GB-second of duration on provisioned concurrency, x86_64", _PC_SOURCE
    ),
    "lambda_arm64_provisioned_gb_s": Price(
        0.0000033334, "USD per GB-second of provisioned concurrency kept, arm64", _PC_SOURCE
    ),
    "lambda_arm64_provisioned_duration_gb_s": Price(
        0.0000077778, "USD per GB-second of duration on provisioned concurrency, arm64", _PC_SOURCE
    ),
    "fargate_x86_vcpu_hour": Price(0.04048, "USD per vCPU-hour, Linux x86", "AWS Fargate pricing (2026)"),
    "fargate_x86_gb_hour": Price(0.004445, "USD per GB-hour, Linux x86", "AWS Fargate pricing (2026)"),
    "fargate_arm64_vcpu_hour": Price(0.03238, "USD per vCPU-hour, Linux arm", "AWS Fargate pricing (2026)"),
    "fargate_arm64_gb_hour": Price(0.00356, "USD per GB-hour, Linux arm", "AWS Fargate pricing (2026)"),
}


@dataclass(frozen=True)
class Prices:
    """The prices one projection uses (defaults: :data:`PRICE_FACTS`, taken :data:`PRICES_DATE`)."""

    lambda_requests_per_million: float = PRICE_FACTS["lambda_requests_per_million"].value
    lambda_x86_gb_s: float = PRICE_FACTS["lambda_x86_gb_s"].value
    lambda_arm64_gb_s: float = PRICE_FACTS["lambda_arm64_gb_s"].value
    lambda_x86_provisioned_gb_s: float = PRICE_FACTS["lambda_x86_provisioned_gb_s"].value
    lambda_x86_provisioned_duration_gb_s: float = PRICE_FACTS["lambda_x86_provisioned_duration_gb_s"].value
    lambda_arm64_provisioned_gb_s: float = PRICE_FACTS["lambda_arm64_provisioned_gb_s"].value
    lambda_arm64_provisioned_duration_gb_s: float = PRICE_FACTS["lambda_arm64_provisioned_duration_gb_s"].value
    fargate_x86_vcpu_hour: float = PRICE_FACTS["fargate_x86_vcpu_hour"].value
    fargate_x86_gb_hour: float = PRICE_FACTS["fargate_x86_gb_hour"].value
    fargate_arm64_vcpu_hour: float = PRICE_FACTS["fargate_arm64_vcpu_hour"].value
    fargate_arm64_gb_hour: float = PRICE_FACTS["fargate_arm64_gb_hour"].value
    #: price key -> where a non-default value came from (for the report)
    overridden: tuple[tuple[str, str], ...] = ()

    def replace(self, source: str = "code", **values: float) -> Prices:
        """A copy with some prices changed; ``source`` is recorded for the report."""
        for key, value in values.items():
            if key not in PRICE_FACTS:
                raise ConfigError(f"{key}: unknown price (in {source}); known: {', '.join(sorted(PRICE_FACTS))}")
            _check(key, value, source)
        kept = tuple((k, s) for k, s in self.overridden if k not in values)
        new = kept + tuple((k, source) for k in values)
        return dataclasses.replace(self, **values, overridden=new)

    def gb_second(self, arch: str) -> float:
        return self.lambda_x86_gb_s if arch == "x86_64" else self.lambda_arm64_gb_s

    def provisioned(self, arch: str) -> tuple[float, float]:
        """(USD per GB-second kept provisioned, USD per GB-second of duration on it) for ``arch``."""
        if arch == "x86_64":
            return self.lambda_x86_provisioned_gb_s, self.lambda_x86_provisioned_duration_gb_s
        return self.lambda_arm64_provisioned_gb_s, self.lambda_arm64_provisioned_duration_gb_s

    def fargate(self, arch: str) -> tuple[float, float]:
        """(USD per vCPU-hour, USD per GB-hour) for ``arch``."""
        if arch == "x86_64":
            return self.fargate_x86_vcpu_hour, self.fargate_x86_gb_hour
        return self.fargate_arm64_vcpu_hour, self.fargate_arm64_gb_hour

    def rows(self) -> list[dict[str, Any]]:
        """Every price with its unit and where it came from, for the report."""
        where = dict(self.overridden)
        return [
            {
                "key": key,
                "value": getattr(self, key),
                "unit": fact.unit,
                "source": where.get(key, f"default, {fact.source}, taken {PRICES_DATE}"),
            }
            for key, fact in PRICE_FACTS.items()
        ]


def _check(key: str, value: object, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{key}: a price must be a number >= 0, got {value!r} (in {source})")
    return float(value)


def parse_price(text: str, source: str = "--price") -> tuple[str, float]:
    """``"key=value"`` -> ``(key, value)``, checked.

    >>> parse_price("lambda_arm64_gb_s=0.0000120001")
    ('lambda_arm64_gb_s', 1.20001e-05)
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError(f"{source}: expected KEY=VALUE, got {text!r}")
    if key not in PRICE_FACTS:
        raise ConfigError(f"{key}: unknown price (in {source}); known: {', '.join(sorted(PRICE_FACTS))}")
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}: a price must be a number, got {raw.strip()!r} (in {source})") from None
    return key, _check(key, value, source)


@dataclass(frozen=True)
class LambdaLimits:
    """Lambda's hard limits the report checks the measurements against (Lambda quotas, 2026-11)."""

    memory_min_mb: int = 128
    memory_max_mb: int = 10_240
    one_vcpu_mb: int = 1_769  # CPU share is proportional to memory; this much buys one vCPU
    max_vcpus: int = 6
    timeout_s: float = 900.0
    sync_payload_bytes: int = 6 * 1024 * 1024  # request and response, synchronous invoke
    package_unzipped_mb: float = 250.0  # a ZIP function and its layers, unzipped
    direct_upload_zipped_mb: float = 50.0  # a larger ZIP is deployed from S3

    @property
    def sync_image_bytes(self) -> int:
        """The largest image that fits a synchronous payload once base64-encoded (about 4.5 MB)."""
        return self.sync_payload_bytes // 4 * 3


@dataclass(frozen=True)
class LambdaPackage:
    """How a backend is deployed on Lambda: a ZIP on the managed runtime (its sizes, MB), or a container image."""

    kind: str  # "zip" or "image"
    how: str
    unzipped_mb: dict[str, float] = dataclasses.field(default_factory=dict)  # arch -> MB
    zipped_mb: dict[str, float] = dataclasses.field(default_factory=dict)


#: The built-in backends' Lambda packages as ``docker/build_lambda_zip.py`` built them for python3.12: ffmpeg
#: on 2026-11-27 (PyAV 19.0.2, numpy 2.5.5, Pillow 13.0.0, pillow-heif 1.8.1), pillow on 2026-12-07 (with
#: simplejpeg 1.9.0 and numpy, which every install now has). Newer wheels change the sizes; the builder
#: prints them.
LAMBDA_PACKAGES: dict[str, LambdaPackage] = {
    "ffmpeg": LambdaPackage(
        "zip",
        "python docker/build_lambda_zip.py --backend ffmpeg",
        {"x86_64": 214.7, "arm64": 168.5},
        {"x86_64": 59.0, "arm64": 56.7},
    ),
    "pillow": LambdaPackage(
        "zip", "python docker/build_lambda_zip.py", {"x86_64": 89.6, "arm64": 78.4}, {"x86_64": 25.9, "arm64": 25.7}
    ),
    "vips": LambdaPackage("image", "docker/Dockerfile.lambda, since Amazon Linux 2023 has no libheif"),
    "wand": LambdaPackage("image", "docker/Dockerfile.lambda, since Amazon Linux 2023 has no libheif"),
}
