#!/usr/bin/env python3
"""Counts test cases over every test program of a meson run and prints "N passed, N failed" last.

    count_tests.py build/meson-logs/testlog.json

Each doctest program ends its output with a line like
    [doctest] test cases:  12 |  11 passed |  1 failed |  0 skipped
A program that crashed or timed out before printing it counts as one failed test case. A test that is
not a doctest program (the PyTorch interop scripts) counts as one test case: passed, failed, or skipped
when it exits with 77 (meson's SKIP: what it needs is not installed). Skipped test cases are counted on
a line of their own before the last, with the names of the tests that skipped them."""
import json
import re
import sys

LINE = re.compile(r"\[doctest\] test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped")


def main():
    passed = failed = skipped = 0
    skipped_in = []
    with open(sys.argv[1]) as log:
        for entry in log:
            result = json.loads(entry)
            match = None
            for match in LINE.finditer(result.get("stdout", "") or ""):
                pass
            if match:
                passed += int(match.group(2))
                failed += int(match.group(3))
                skipped_here = int(match.group(4))
            elif result.get("result") == "SKIP":
                skipped_here = 1
            elif result.get("result") in ("OK", "EXPECTEDFAIL"):
                passed += 1
                skipped_here = 0
            else:
                failed += 1
                skipped_here = 0
            if skipped_here:
                skipped += skipped_here
                skipped_in.append(result.get("name", "?"))
    if skipped:
        print(f"{skipped} skipped (a dataset or tool they need is missing): {', '.join(skipped_in)}")
    print(f"{passed} passed, {failed} failed")


if __name__ == "__main__":
    main()
