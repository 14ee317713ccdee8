#!/usr/bin/env python3
"""compare.py A.csv B.csv: joins two benchmark tables (columns bench,threads,median_us,...) on (bench, threads)
and prints A's median, B's and the ratio A/B per case (below 1: A is faster). Cases found in only one table
are listed after the others."""
import csv
import sys


def medians(path):
    with open(path, newline="") as f:
        return {(row["bench"], int(row["threads"])): float(row["median_us"]) for row in csv.DictReader(f)}


def main():
    a, b = medians(sys.argv[1]), medians(sys.argv[2])
    print(f"{'bench':36s} {'thr':>3s} {'A us':>12s} {'B us':>12s} {'A/B':>7s}")
    for key in sorted(a.keys() & b.keys()):
        print(f"{key[0]:36s} {key[1]:3d} {a[key]:12.3f} {b[key]:12.3f} {a[key] / b[key]:7.3f}")
    for key in sorted(a.keys() ^ b.keys()):
        print(f"{key[0]:36s} {key[1]:3d} only in {'A' if key in a else 'B'}")


if __name__ == "__main__":
    main()
