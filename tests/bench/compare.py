#!/usr/bin/env python3
"""compare.py [--markdown] NORMGRAD.csv [REFERENCE.csv]: the benchmark table, one row per case and, for each
thread count, normgrad's median time per call, the reference's and the ratio normgrad / reference (below 1:
normgrad is faster). Both files have the columns bench,threads,median_us,... (tests/bench/timing.h). Without
a reference file the table holds normgrad's medians alone. Cases that only one side has are listed after
the others. --markdown prints the table as Markdown, for the README or an issue.

Then a second table, normgrad's threads: per case, its time at each thread count over its own time at 1
thread (below 1: the extra threads help; above 1: they cost). Last, a warning when the reference's 512x512
matmul ran below 60 GFLOP/s on 1 thread: its BLAS then ran slow kernels (a forced OPENBLAS_CORETYPE, or
not OpenBLAS at all), and the ratios flatter normgrad and are not to be reported."""
import csv
import sys


def medians(path):
    """{(bench, threads): median_us} of one CSV file, and its case names in the order they first appear."""
    table, order = {}, []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            table[(row["bench"], int(row["threads"]))] = float(row["median_us"])
            if row["bench"] not in order:
                order.append(row["bench"])
    return table, order


def print_table(header, rows, markdown):
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("| --- |" + " ---: |" * (len(header) - 1))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(line[i]) for line in [header] + rows) for i in range(len(header))]
    for line in [header] + rows:
        print("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line)))


def main():
    args = sys.argv[1:]
    markdown = "--markdown" in args
    paths = [a for a in args if a != "--markdown"]
    if not 1 <= len(paths) <= 2:
        sys.exit("usage: compare.py [--markdown] NORMGRAD.csv [REFERENCE.csv]")
    ours, order = medians(paths[0])
    reference, reference_order = medians(paths[1]) if len(paths) == 2 else ({}, [])
    threads = sorted({t for _, t in ours.keys() | reference.keys()})

    header, rows = ["bench"], []
    for t in threads:
        header += [f"normgrad us, {t} thr"] + ([f"libtorch us, {t} thr", f"ratio, {t} thr"] if reference else [])
    one_sided = []
    for name in order + [n for n in reference_order if n not in order]:
        in_ours = any((name, t) in ours for t in threads)
        in_reference = any((name, t) in reference for t in threads)
        if reference and not (in_ours and in_reference):
            one_sided.append(f"{name}: only in {'normgrad' if in_ours else 'the reference'}")
            continue
        row = [name]
        for t in threads:
            a, b = ours.get((name, t)), reference.get((name, t))
            row.append(f"{a:.2f}" if a is not None else "-")
            if reference:
                row.append(f"{b:.2f}" if b is not None else "-")
                row.append(f"{a / b:.2f}" if a is not None and b is not None else "-")
        rows.append(row)
    print_table(header, rows, markdown)
    for line in one_sided:
        print(line)

    if 1 in threads and len(threads) > 1:
        print()
        print("== normgrad's threads (time at N threads / time at 1 thread; below 1: the threads help)")
        header = ["bench"] + [f"{t} thr / 1 thr" for t in threads if t != 1]
        rows = []
        for name in order:
            one = ours.get((name, 1))
            if one is None:
                continue
            rows.append([name] + [f"{ours[(name, t)] / one:.2f}" if (name, t) in ours else "-"
                                  for t in threads if t != 1])
        print_table(header, rows, markdown)

    slow = reference.get(("matmul_512_alloc", 1))
    if slow is not None:
        gflops = 2.0 * 512 ** 3 / (slow * 1e3)
        if gflops < 60:
            print(f"\nWARNING: the reference's 512x512 matmul ran at {gflops:.0f} GFLOP/s on 1 thread (below 60): "
                  "its BLAS used slow kernels, so these ratios flatter normgrad; do not report them.")


if __name__ == "__main__":
    main()
