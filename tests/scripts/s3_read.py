#!/usr/bin/env python3
"""Reads a flowtrail dataset back from S3-compatible storage with pyarrow
(DuckDB's httpfs extension is downloaded at run time from a host this
machine cannot reach, so DuckDB gets the data from pyarrow instead).

    s3_read.py fetch ENDPOINT BUCKET PREFIX DEST
        prints `key<TAB>size` of every object under PREFIX, and copies each
        into DEST at its path relative to PREFIX (to compare rows exactly)
    s3_read.py top ENDPOINT BUCKET PREFIX
        opens PREFIX/flows as a pyarrow dataset (hive partitioning) and
        prints DuckDB's top five talkers by bytes over it, then the row count

Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
"""
import os
import sys

import pyarrow.fs as pafs


def filesystem(endpoint: str) -> pafs.S3FileSystem:
    scheme, _, host = endpoint.partition("://")
    return pafs.S3FileSystem(
        endpoint_override=host,
        scheme=scheme,
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
    )


def fetch(fs: pafs.S3FileSystem, bucket: str, prefix: str, dest: str) -> None:
    base = f"{bucket}/{prefix}".rstrip("/")
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    for info in sorted(infos, key=lambda i: i.path):
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(base) + 1 :]
        print(f"{info.path[len(bucket) + 1:]}\t{info.size}")
        local = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with fs.open_input_stream(info.path) as src, open(local, "wb") as out:
            out.write(src.read())


def top(fs: pafs.S3FileSystem, bucket: str, prefix: str) -> None:
    import duckdb
    import pyarrow.dataset as ds

    base = f"{bucket}/{prefix}".rstrip("/")
    # The files, listed: s3s-fs answers HEAD on a "directory" key with a
    # 500, so the dataset gets its files and their hive base, not a prefix.
    files = [
        i.path
        for i in fs.get_file_info(pafs.FileSelector(f"{base}/flows", recursive=True))
        if i.type == pafs.FileType.File and i.path.endswith(".parquet")
    ]
    flows = ds.dataset(
        files, filesystem=fs, format="parquet", partitioning="hive", partition_base_dir=f"{base}/flows"
    ).to_table()
    assert "date" in flows.column_names and "hour" in flows.column_names, flows.column_names
    rows = duckdb.sql(
        "select client_ip, sum(client_bytes + server_bytes) as b from flows "
        "group by 1 order by b desc, client_ip limit 5"
    ).fetchall()
    for ip, b in rows:
        print(f"{ip}\t{b}")
    print(f"rows\t{flows.num_rows}")


def main() -> None:
    cmd, endpoint, bucket, prefix = sys.argv[1:5]
    fs = filesystem(endpoint)
    if cmd == "fetch":
        fetch(fs, bucket, prefix, sys.argv[5])
    elif cmd == "top":
        top(fs, bucket, prefix)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
