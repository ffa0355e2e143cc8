"""Seconds per test module from a pytest JUnit XML report (``pytest --junitxml=times.xml``;
a test's time includes its fixtures' setup, so a module-scoped or session-scoped fixture
counts in the module that first asks for it).

Usage: python tools/suite_times.py times.xml [other.xml]   (two reports: side by side)
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict


def module_times(report: str) -> tuple[dict[str, float], Counter]:
    seconds: dict[str, float] = defaultdict(float)
    tests: Counter = Counter()
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "").split(".")[-1]
        seconds[module] += float(case.get("time") or 0)
        tests[module] += 1
    return seconds, tests


def main(reports: list[str]) -> int:
    tables = [module_times(report) for report in reports]
    modules = sorted({m for seconds, _ in tables for m in seconds},
                     key=lambda m: -max(seconds.get(m, 0) for seconds, _ in tables))
    header = "".join(f"  {'tests':>6} {'s':>8}" for _ in tables)
    print(f"{'module':30}{header}")
    for module in modules:
        row = "".join(f"  {tests.get(module, 0):6d} {seconds.get(module, 0):8.1f}"
                      for seconds, tests in tables)
        print(f"{module:30}{row}")
    total = "".join(f"  {sum(tests.values()):6d} {sum(seconds.values()):8.1f}"
                    for seconds, tests in tables)
    print(f"{'total':30}{total}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
