"""`make bench`: every benchmark, each against its natural baseline in the same run."""

import argparse

from benchmarks import gate, scoring


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    args = parser.parse_args()
    print("## Data-quality gate\n")
    print(gate.report([gate.run(rows) for rows in args.rows]))
    print("\n## Batch scoring\n")
    print(scoring.main(args.rows))


if __name__ == "__main__":
    main()
