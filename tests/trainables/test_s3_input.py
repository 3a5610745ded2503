"""``data.path`` on S3: a file, a prefix or a glob of Parquet shards, read as from a folder.

The store is a real S3 endpoint on 127.0.0.1 (moto's server; the AWS credentials are
its fakes), reached through pyarrow's own S3 client, as a user's job reaches S3 or
MinIO (``AWS_ENDPOINT_URL``). Every read is checked against the same files on disk.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from trainables.data import DataError, load_dataset, make_synthetic
from trainables.shard_plan import plan_shards
from trainables.tables import is_sharded, read_table

BUCKET = "fraud-logs"


def _frame(rows=3000, seed=5):
    frame = make_synthetic(rows=rows, fraud_rate=0.05, seed=seed)
    frame["merchant"] = np.where(np.arange(rows) % 3 == 0, "shop-a", "shop-b")
    return frame


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3 endpoint on loopback holding shards (and single files) also written locally."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "moto-fake",
           "AWS_SECRET_ACCESS_KEY": "moto-fake", "AWS_DEFAULT_REGION": "us-east-1",
           # Never ask an instance-metadata address for credentials: loopback only.
           "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(endpoint_override=env["AWS_ENDPOINT_URL"], allow_bucket_creation=True)
    fs.create_dir(BUCKET)
    local = tmp_path_factory.mktemp("s3-local")
    frame = _frame()
    (local / "shards").mkdir()
    for i in range(3):  # shard 1 in a sub-folder: a prefix is listed recursively
        name = f"day={i}/part-{i}.parquet" if i == 1 else f"part-{i}.parquet"
        (local / "shards" / name).parent.mkdir(exist_ok=True)
        frame.iloc[i::3].to_parquet(local / "shards" / name, index=False)
    (local / "shards" / "_SUCCESS").write_text("")  # Spark's marker: skipped, as in a folder
    frame.to_csv(local / "whole.csv.gz", index=False)
    frame.to_parquet(local / "whole.parquet", index=False)
    for file in sorted(p for p in local.rglob("*") if p.is_file()):
        # compression=None: the bytes as they are (pyarrow would gzip a .gz name again).
        with fs.open_output_stream(f"{BUCKET}/{file.relative_to(local)}", compression=None) as out:
            out.write(file.read_bytes())
    yield {"local": local, "env": env, "frame": frame}
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_single_files_read_as_from_disk(s3):
    local = s3["local"]
    for name in ("whole.parquet", "whole.csv.gz"):
        got = read_table(f"s3://{BUCKET}/{name}")
        pd.testing.assert_frame_equal(got, read_table(local / name))
    assert len(got) == len(s3["frame"])


def test_a_prefix_and_a_glob_read_as_the_folder(s3):
    local = s3["local"]
    assert is_sharded(f"s3://{BUCKET}/shards/") and is_sharded(f"s3://{BUCKET}/shards/*.parquet")
    # The folder's rows are read in sorted path order, its key=value sub-folder as a
    # column (Hive's layout); so are the prefix's objects.
    prefix = read_table(f"s3://{BUCKET}/shards/")
    pd.testing.assert_frame_equal(prefix, read_table(local / "shards"))
    assert prefix["day"].notna().sum() == 1000
    # A glob matches as on disk: * within one folder, ** across any number of them.
    for pattern, rows in (("part-*.parquet", 2000), ("*.parquet", 2000), ("**/*.parquet", 3000),
                          ("*/part-*.parquet", 1000)):
        got = read_table(f"s3://{BUCKET}/shards/{pattern}")
        pd.testing.assert_frame_equal(got, read_table(str(local / "shards" / pattern)))
        assert len(got) == rows, pattern


def test_a_job_on_an_s3_prefix_splits_as_on_the_folder(s3):
    """Both routes: the driver's read (one worker per trial) and the shard plan (data-parallel)."""
    local = s3["local"]
    read = load_dataset(source="file", path=f"s3://{BUCKET}/shards/", min_positives=5)
    assert read.fingerprint == load_dataset(source="file", path=str(local / "shards"),
                                            min_positives=5).fingerprint
    planned = plan_shards(path=f"s3://{BUCKET}/shards/", min_positives=5)
    on_disk = plan_shards(path=str(local / "shards"), min_positives=5)
    assert planned.plan.files[0].startswith(f"s3://{BUCKET}/shards/") and len(planned.plan.files) == 3
    assert planned.fingerprint == on_disk.fingerprint
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(planned, name).y, getattr(on_disk, name).y)
    np.testing.assert_array_equal(planned.test.rows, on_disk.test.rows)
    assert planned.plan.preprocessor == on_disk.plan.preprocessor


def test_missing_objects_fail_in_one_line(s3):
    cases = {f"s3://{BUCKET}/nothing.parquet": "does not exist",
             f"s3://{BUCKET}/empty-prefix/": "holds no Parquet files",
             f"s3://{BUCKET}/shards/*.csv": "matches no object",
             "s3://no-such-bucket/shards/": "no-such-bucket"}
    for path, message in cases.items():
        with pytest.raises(DataError, match=message) as err:
            read_table(path)
        assert "\n" not in str(err.value) and path in str(err.value)
    with pytest.raises(DataError, match="holds no Parquet files"):
        plan_shards(path=f"s3://{BUCKET}/empty-prefix/")


# Ray Data on the workers of a Ray started with the store's variables (as a cluster's
# nodes carry their credentials): the session's shared Ray was started without them.
_RAY_READ = textwrap.dedent("""
    import json, sys
    import pandas as pd
    import ray
    from trainables.shard_plan import plan_shards
    from trainables.shards import ray_split

    ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    out = {}
    for where, path in (("s3", sys.argv[1]), ("disk", sys.argv[2])):
        plan = plan_shards(path=path, min_positives=5).plan
        frame = ray_split(plan, ["train", "val"]).to_pandas()
        frame = frame[sorted(frame.columns)]
        # An order-free digest of the converted rows (Ray's blocks come in any order).
        digest = int(pd.util.hash_pandas_object(frame, index=False).sum())
        out[where] = {"rows": len(frame), "positives": int(frame["__tuning_y"].sum()),
                      "digest": digest, "partition_values": int(frame["day"].notna().sum())}
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_ray_data_reads_the_trial_rows_from_s3(s3):
    local = s3["local"]
    done = subprocess.run(
        [sys.executable, "-c", _RAY_READ, f"s3://{BUCKET}/shards/", str(local / "shards")],
        env={**os.environ, **s3["env"]}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["s3"] == out["disk"], out
    # Training and validation rows only (about 80 %), the key=value shard's among them.
    assert 0.7 * len(s3["frame"]) < out["s3"]["rows"] < 0.9 * len(s3["frame"])
    assert out["s3"]["positives"] > 0 and 0 < out["s3"]["partition_values"] < out["s3"]["rows"]
