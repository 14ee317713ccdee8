#!/usr/bin/env python3
"""Counts doctest test cases over every test program of a meson run and prints "N passed, N failed".

    count_tests.py build/meson-logs/testlog.json

Each doctest program ends its output with a line like
    [doctest] test cases:  12 |  11 passed |  1 failed |  0 skipped
A program that crashed or timed out before printing it counts as one failed test case."""
import json
import re
import sys

LINE = re.compile(r"\[doctest\] test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed")


def main():
    passed = failed = 0
    with open(sys.argv[1]) as log:
        for entry in log:
            result = json.loads(entry)
            match = None
            for match in LINE.finditer(result.get("stdout", "") or ""):
                pass
            if match:
                passed += int(match.group(2))
                failed += int(match.group(3))
            elif result.get("result") not in ("OK", "EXPECTEDFAIL", "SKIP"):
                failed += 1
    print(f"{passed} passed, {failed} failed")


if __name__ == "__main__":
    main()
