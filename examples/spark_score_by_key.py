"""Score a keyed event stream in Spark Structured Streaming with one pygad estimator per key.

Run:  python -P examples/spark_score_by_key.py [--workdir /tmp/pygad-spark]
      (needs pip install 'pygad[spark]' and a Java 17+ runtime)

Writes a few parquet files of (key, order, f0..f3) events, scores them with
``score_by_key`` (the per-key estimator state lives in Spark's state store), prints the
flagged rows, then adds a file and restarts the query on the same checkpoint: the per-key
state carries over.
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import pandas as pd

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYTHONSAFEPATH", "1")  # workers import the installed pygad, not ./pygad
from pyspark.sql import SparkSession  # noqa: E402

from pygad.integrations.spark import score_by_key  # noqa: E402
from pygad.stream import ClippedSGDMean  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--workdir", default=tempfile.mkdtemp(prefix="pygad-spark-"))
args = ap.parse_args()
src, out, ckpt = (os.path.join(args.workdir, d) for d in ("events", "scores", "checkpoint"))
os.makedirs(src, exist_ok=True)
rng = np.random.default_rng(0)


def write_file(i, n=2000, keys=50):
    k = rng.integers(0, keys, n)
    X = rng.normal(k[:, None] % 5, 1.0, (n, 4))
    X[rng.random(n) < 0.01] += 15.0                       # a few anomalies
    pdf = pd.DataFrame({"key": k, "order": np.arange(i * n, (i + 1) * n),
                        **{f"f{j}": X[:, j] for j in range(4)}})
    pdf.sample(frac=1.0, random_state=i).to_parquet(os.path.join(src, f"part-{i:03d}.parquet"))


spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.sql.shuffle.partitions", "2").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")


def run():
    events = (spark.readStream.schema("key long, order long, f0 double, f1 double, "
                                      "f2 double, f3 double")
              .option("maxFilesPerTrigger", 1).parquet(src))
    scored = score_by_key(events, ClippedSGDMean(), key="key", order="order")
    q = (scored.writeStream.format("parquet").option("path", out)
         .option("checkpointLocation", ckpt).trigger(availableNow=True).start())
    q.awaitTermination()


for i in range(3):
    write_file(i)
run()
write_file(3)
run()                                                     # restart: state from the checkpoint
res = spark.read.parquet(out)
print(res.groupBy("flag").count().orderBy("flag").toPandas())
print(res.where("flag = 1").orderBy("key", "order").limit(10).toPandas())
spark.stop()
