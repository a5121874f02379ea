"""`make bench`: every benchmark, each against its natural baseline in the same run."""

import argparse

from inferloop.core.offline import prepare_process

prepare_process()

from benchmarks import (
    common,
    dask_scaling,
    drift,
    gate,
    model_size,
    optimised,
    scoring,
    serving,
    stack_overhead,
    whole_process,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--process-rows", type=int, nargs="+", default=[1_000_000, 5_000_000, 10_000_000])
    parser.add_argument("--mlflow-rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--dask-days", type=int, default=4)
    parser.add_argument("--dask-rows-per-day", type=int, default=500_000)
    parser.add_argument("--stack-rows", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per Dask / stack configuration")
    args = parser.parse_args()
    print(f"Machine at the start: {common.machine_context()}\n")
    print("## Data-quality gate\n")
    print(gate.report([gate.run(rows) for rows in args.rows]))
    print("\n## Batch scoring\n")
    print(scoring.main(args.rows))
    print("\n## Optimised artifact (compiled booster) vs predict_proba\n")
    print(optimised.run(1_000_000, repeats=3, single_calls=300, train_rows=100_000))
    print("\n## Model size: fewer trees or leaves vs the default model\n")
    print(model_size.run(train_rows=100_000, rows=200_000, repeats=3, single_calls=200))
    print("\n## Drift report (1M rows x 16 features)\n")
    print(drift.main([1_000_000]))
    print("\n## Whole process: inferloop infer vs mlflow models predict\n")
    print(whole_process.main(args.process_rows, set(args.mlflow_rows)))
    print(f"\n## Dask scale-out ({args.dask_days} partitions x {args.dask_rows_per_day:,} rows)\n")
    print(dask_scaling.main(args.dask_days, args.dask_rows_per_day, args.repeats))
    print(f"\n## Fixed overhead with the local stack up ({args.stack_rows:,}-row partition)\n")
    print(stack_overhead.main(args.stack_rows, args.repeats))
    print("\n## Online scoring: inferloop serve vs mlflow models serve\n")
    print(serving.main())


if __name__ == "__main__":
    main()
