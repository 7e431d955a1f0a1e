"""Schemathesis over the service's OpenAPI document, in process; shared by the test suite and benchmarks/fuzz.py.

Every operation is called with generated requests, valid (positive) and invalid (negative). Schemathesis's
checks then fail an answer that is a 5xx, uses a status the document does not list (ST103), breaks the body
schema declared for its status (ST108), or accepts invalid data (ST201), among others.

One check is left out: that every schema-valid request is accepted (ST202). Some rules cannot be stated in JSON
Schema, and the service keeps them: a strict integer refuses 2.0 (JSON Schema counts it as an integer), ids
refuse invisible characters beyond those the pattern lists, a user without history cannot be recommended for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance


@dataclass
class FuzzReport:
    requests: int = 0
    operations: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "<operation> <mode>: <schemathesis's report>"


def fuzz_app(app: Any, *, examples: int, random_seed: int = 0, headers: dict[str, str] | None = None) -> FuzzReport:
    """Up to `examples` generated requests per operation and mode, against `app` (its lifespan runs once)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=headers or {})
    report = FuzzReport()
    for result in schema.get_all_operations():
        operation = result.ok()
        report.operations.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run(operation, mode, examples, random_seed, headers, report)
            except Unsatisfiable:  # no invalid request exists for an operation without parameters or body
                continue
            except (Exception, BaseExceptionGroup) as error:  # every failure is collected, then reported together
                report.failures.append(f"{operation.label} {mode.value}: {error}")
    return report


def _run(
    operation: Any, mode: GenerationMode, examples: int, random_seed: int, headers: dict[str, str] | None, report: Any
) -> None:
    # No shrinking: a failure's first example is reported as found (shrinking can take minutes).
    @seed(random_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        report.requests += 1
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    run()
