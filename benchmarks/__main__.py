"""`make bench`: every benchmark, each against its natural baseline in the same run."""

import argparse

from benchmarks import drift, gate, scoring, whole_process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--process-rows", type=int, nargs="+", default=[1_000_000, 5_000_000, 10_000_000])
    parser.add_argument("--mlflow-rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    args = parser.parse_args()
    print("## Data-quality gate\n")
    print(gate.report([gate.run(rows) for rows in args.rows]))
    print("\n## Batch scoring\n")
    print(scoring.main(args.rows))
    print("\n## Drift report (1M rows x 16 features)\n")
    print(drift.main([1_000_000]))
    print("\n## Whole process: inferloop infer vs mlflow models predict\n")
    print(whole_process.main(args.process_rows, set(args.mlflow_rows)))


if __name__ == "__main__":
    main()
