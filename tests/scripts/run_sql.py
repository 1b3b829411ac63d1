#!/usr/bin/env python3
"""Runs one of queries/*.sql on DuckDB or Spark (local mode) over a
flowtrail output directory and prints the rows as TSV (header first).

    run_sql.py duckdb|spark DIR FILE.sql
"""
import sys


def main() -> None:
    engine, out_dir, sql_file = sys.argv[1:4]
    sql = open(sql_file).read()
    kinds = ["flows", "calls", "nat_paths"]
    if engine == "duckdb":
        import duckdb
        import glob

        con = duckdb.connect()
        for k in kinds:
            if glob.glob(f"{out_dir}/{k}/**/*.parquet", recursive=True):
                con.execute(
                    f"create view {k} as select * from read_parquet('{out_dir}/{k}/**/*.parquet', hive_partitioning=true)"
                )
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
    else:
        import os
        from pyspark.sql import SparkSession

        spark = (
            SparkSession.builder.master("local[1]")
            .appName("flowtrail-sql")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        for k in kinds:
            if os.path.isdir(f"{out_dir}/{k}"):
                spark.read.parquet(f"{out_dir}/{k}").createOrReplaceTempView(k)
        df = spark.sql(sql)
        cols = df.columns
        rows = [tuple(r) for r in df.collect()]
        spark.stop()
    print("\t".join(cols))
    for r in rows:
        print("\t".join("-" if v is None else str(v) for v in r))


if __name__ == "__main__":
    main()
