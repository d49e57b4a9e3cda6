"""Spark 4.3 real-time mode, windowed candles over Kafka, with the 4.2.0 connector jars."""
import glob, json, os, sys, time
from pathlib import Path
from pyspark.sql import SparkSession, functions as F
mode = sys.argv[1]  # "rtm" or "micro"
jars = ",".join(sorted(glob.glob(os.path.expanduser("~/.cache/cryptolab/jars/spark-kafka-4.2.0/*.jar"))))
spark = (SparkSession.builder.master(os.environ.get("RTM_MASTER", "local[2]")).appName("rtm-eval")
         .config("spark.jars", jars).config("spark.sql.shuffle.partitions", "2")
         .config("spark.sql.session.timeZone", "UTC").getOrCreate())
spark.sparkContext.setLogLevel("WARN")
print("spark", spark.version, flush=True)
bootstrap = open("/tmp/rtm_bootstrap").read().strip()
schema = "symbol STRING, trade_id BIGINT, price STRING, qty STRING, trade_time BIGINT, event_time BIGINT, is_buyer_maker BOOLEAN, ingest_time BIGINT"
raw = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
       .option("subscribe", "rtm_trades").option("startingOffsets", "latest").load())
t = raw.select(F.from_json(F.col("value").cast("string"), schema).alias("t")).select("t.*")
t = t.withColumn("ts", F.timestamp_millis("trade_time"))
candles = (t.withWatermark("ts", "5 seconds")
           .groupBy(F.window("ts", "10 seconds"), "symbol")
           .agg(F.max("trade_time").alias("newest"), F.count("*").alias("trades"),
                F.max(F.col("price").cast("decimal(18,8)")).alias("high")))
out = Path(f"/tmp/rtm_out_{mode}.jsonl"); out.unlink(missing_ok=True)

class Writer:
    def open(self, partition_id, epoch_id):
        self.f = open(f"/tmp/rtm_out_{mode}.jsonl", "a"); return True
    def process(self, row):
        self.f.write(json.dumps({"now": time.time() * 1000, "newest": row["newest"], "trades": row["trades"]}) + "\n")
    def close(self, err):
        self.f.close()

w = candles.writeStream.outputMode("update").foreach(Writer()).option("checkpointLocation", f"/tmp/rtm_ckpt_{mode}_{int(time.time())}")
w = w.trigger(realTime="5 seconds") if mode == "rtm" else w.trigger(processingTime="1 second")
try:
    q = w.start()
except Exception as exc:
    print("START FAILED:", type(exc).__name__, str(exc)[:3000], flush=True); sys.exit(1)
Path("/tmp/rtm_ready").touch()
print("started", flush=True)
deadline = time.time() + float(sys.argv[2])
while time.time() < deadline and q.isActive:
    time.sleep(2)
    if q.exception(): print("QUERY FAILED:", str(q.exception())[:3000], flush=True); break
print("progress:", json.dumps(q.lastProgress)[:1500] if q.lastProgress else None, flush=True)
q.stop(); spark.stop()
lat = []
if out.exists():
    for line in out.read_text().splitlines():
        r = json.loads(line); lat.append((r["now"] - r["newest"]) / 1000)
lat.sort()
if lat:
    print(f"{mode}: emitted {len(lat)} candle updates, latency newest trade -> emitted p50 {lat[len(lat)//2]:.3f}s p99 {lat[int(len(lat)*0.99)]:.3f}s", flush=True)
