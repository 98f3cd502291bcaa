"""HTTP API benchmark (issues #5, #15): `.venv/bin/python -m bench.api` from the repository root.

Everything runs on this machine; clients and server talk over 127.0.0.1 only.
1. --profiles X-PEFT hard profiles (k=50; default 1,000) on the default random pool (N=100) of the
   packaged MiniLM, in a fresh embedded store. They are NOT trained (training 1,000 profiles on a CPU
   takes hours): they are registered in bulk (bench/scale_store.py) with random hard masks and the
   heads of a few states saved by the engine, exactly the rows a finished training job writes.
   Serving cost is the same whether the masks were learned or drawn.
2. `profilekit serve --no-worker` starts in a subprocess on a free loopback port (default batcher
   settings: max batch 64 rows, max wait 5 ms; admission by queue time raised to --max-queue-seconds
   so that 429s do not stand in for throughput); every profile (with --hot-fraction: every hot one)
   is requested once to warm the cache.
3. Rounds, alternating so that machine noise hits every side alike: the plain backbone in-process on
   the same texts (tokenize + forward in batches of 64 rows), the served forward in-process
   (Engine.predict, 64 rows with 64 distinct profiles), then C concurrent clients for a fixed time,
   each sending `POST /v1/predict` with R items for random profiles and random texts (a 429's
   Retry-After is honoured and counted).

Prints `name: value` lines: requests/s, served rows/s, client-side latency p50/p99, the mean batch
the server's batcher formed (from /metrics), the backbone's and the engine's rows/s, and
served_throughput_ratio (served rows/s over in-process backbone rows/s, median over rounds; target
>= 0.9) beside served_over_engine_ratio (what HTTP and batching cost on top of the forward). The server
cuts each batch into rows of similar length (setting length_split_overhead), which the plain backbone,
one forward per 64 rows, does not: served_over_split_backbone_ratio is over the backbone cut the same
way (each round also times it), the served rate with that gain taken out. client_cpu_share and
server_cpu_share: the CPU time the benchmark's clients (this process) and the server used while the
clients ran, as shares of every core's time (the clients take theirs from the same cores).
With --profile-stacks, py-spy samples the server during round 1 and the shares of its busy samples
are printed (py-spy takes CPU from the same cores: round 1 is then slower).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import plain_forward, report
from profilekit.data import NEWS_AUTHORS

REPO = Path(__file__).resolve().parents[1]


def news_sample(n: int) -> tuple[list[str], list[str]]:
    """The first n texts of the news data, and the categories found there."""
    texts, categories = [], set()
    with NEWS_AUTHORS.open() as handle:
        for line in handle:
            row = json.loads(line)
            texts.append(row["text"])
            categories.add(row["category"])
            if len(texts) == n:
                break
    return texts, sorted(categories)


def make_profiles(settings, n: int, categories: list[str], *, seed: int = 0):
    """n untrained X-PEFT hard profiles (k=50) with random masks on the default random pool, registered in
    bulk with the rows a finished training job writes (bench/scale_store.py). Returns (client key,
    profile ids, stored bytes of one artifact, engine)."""
    from bench import scale_store
    from profilekit.api.auth import create_key
    from profilekit.jobs import default_pool
    from profilekit.runner import resolve_pool
    from profilekit.serving import EngineCache
    from profilekit.store import make_engine, make_session_factory
    from profilekit.store.migrate import upgrade

    upgrade(settings.resolved_database_url)
    db = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(db)
    with sessions() as session:
        key = create_key(session, tenant="bench", role="client", name="bench.api")
        engines = EngineCache(settings)
        pool_row = resolve_pool(session, default_pool(settings), engines)  # as a worker resolves it
        pool_hash = pool_row.pool_hash
        engine = engines.training_engine(pool_row)
    templates = scale_store.template_artifacts(engine, count=16, head="profile", labels=tuple(categories), k=50,
                                               seed=seed)
    result = scale_store.register_profiles(db, pool_hash=pool_hash, templates=templates, target=n, chunk=5000,
                                           max_seconds=3600, max_rss_mb=math.inf, min_free_disk_mb=0,
                                           disk_path=None, seed=seed, tenant="bench")
    db.dispose()
    return key, result.ids, result.stored_bytes, engine


def start_server(data_dir: Path, settings: dict[str, str] | None = None, *, worker: bool = False
                 ) -> tuple[subprocess.Popen, str, collections.deque]:
    """`profilekit serve` in a subprocess (`settings`: more PROFILEKIT_ variables; `worker`: with its
    embedded worker); returns it, its URL, and the last lines it printed (its output is drained all
    along, so a full pipe never blocks it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFILEKIT_")} | (settings or {})
    env |= {"PROFILEKIT_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(REPO), env.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "profilekit.cli", "serve", "--host", "127.0.0.1", "--port", "0",
                                *([] if worker else ["--no-worker"])],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    for line in process.stdout:
        found = re.search(r"profilekit ready at (http://127\.0\.0\.1:\d+)", line)
        if found:
            tail: collections.deque[str] = collections.deque(maxlen=400)
            threading.Thread(target=tail.extend, args=(process.stdout,), daemon=True).start()
            return process, found.group(1), tail
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError("the server did not start")


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def batch_metrics(url: str) -> tuple[float, float]:
    """(rows, batches) the server's batcher has formed so far."""
    import httpx

    text = httpx.get(f"{url}/metrics", timeout=30).text
    total = float(re.search(r"^profilekit_batch_rows_sum (\S+)$", text, re.M).group(1))
    count = float(re.search(r"^profilekit_batch_rows_count (\S+)$", text, re.M).group(1))
    return total, count


async def clients(url: str, key: str, ids: list[str], texts: list[str], *, concurrency: int, items: int,
                  seconds: float, seed: int, hot: list[str] | None = None, hot_share: float = 0.9) -> dict:
    """`concurrency` clients, each posting requests of `items` random (profile, text) pairs in a loop.
    With `hot`, an item names a hot profile with probability `hot_share`, else any profile. A 429 is
    counted and its Retry-After honoured, as `profilekit.client.Retry` does."""
    import httpx

    latencies, errors = [], []
    rows = refused = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120,
                                 limits=limits) as http:
        began = time.perf_counter()
        end = began + seconds

        async def client(index: int):
            nonlocal rows, refused
            rng = random.Random(seed * 1000 + index)

            def profile() -> str:
                return rng.choice(hot if hot and rng.random() < hot_share else ids)

            while time.perf_counter() < end:
                body = {"items": [{"profile_id": profile(), "text": rng.choice(texts)} for _ in range(items)]}
                sent = time.perf_counter()
                response = await http.post("/v1/predict", json=body)
                if response.status_code == 429:
                    refused += 1
                    wait = float(response.headers.get("Retry-After", 1))
                    await asyncio.sleep(min(wait, max(0.0, end - time.perf_counter())))
                    continue
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                    continue
                latencies.append(time.perf_counter() - sent)
                rows += items

        await asyncio.gather(*(client(i) for i in range(concurrency)))
        wall = time.perf_counter() - began
    return {"latencies": latencies, "errors": errors, "rows": rows, "wall": wall, "refused": refused}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) a process has used so far, from /proc; NaN without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def record_stacks(pid: int, seconds: float, path: Path) -> subprocess.Popen:
    """py-spy sampling the server's Python stacks (every thread, idle waits excluded) into `path` (raw)."""
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "100",
                             "--format", "raw", "--output", str(path), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


STACK_PARTS = {  # frame name → what it is, for the summary of the server's stacks
    "Engine.forward": "the mixed forward (batcher thread)",
    "Engine._compose": "composing the profiles' effects (inside the forward)",
    "Backbone.tokenize": "tokenizing a batch (batcher thread)",
    "BaseEventLoop._run_once": "the event loop: HTTP, validation, routing, responses",
    "resolve": "the profiles' states: database look-up and cache (thread pool)",
    "load_states": "the batched loader (inside resolve)",
    "FastJSONResponse.render": "rendering answers (orjson)",
}


def stack_summary(path: Path) -> list[tuple[str, float]]:
    """(part, share of busy samples) for STACK_PARTS and the innermost frames most often sampled, from a
    raw py-spy file; a sample is busy unless its innermost frame waits (a lock, a queue, the selector)."""
    idle = ("Condition.wait", "EpollSelector.select", "Event.wait", "Thread.join")
    inclusive: collections.Counter[str] = collections.Counter()
    innermost: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [(f.split(" (")[0], f.rsplit("/", 1)[-1].rsplit("(", 1)[-1].split(":")[0]) for f in stack.split(";")]
        if frames[-1][0].startswith(idle):
            continue
        busy += int(count)
        for name in {name for name, _ in frames} & STACK_PARTS.keys():
            inclusive[name] += int(count)
        innermost[f"{frames[-1][0]} ({frames[-1][1]})"] += int(count)
    parts = [(f"{name}: {STACK_PARTS[name]}", inclusive[name] / max(busy, 1)) for name in STACK_PARTS]
    return parts + [(f"innermost {frame}", n / max(busy, 1)) for frame, n in innermost.most_common(8)]


def backbone_rows_per_second(backbone, texts: list[str], batch: int, seconds: float,
                             split_overhead: int | None = None) -> float:
    """The plain backbone in-process: tokenize and forward the same texts in batches of `batch` rows, each
    in one forward; with `split_overhead`, cut into rows of similar length as serving cuts a batch."""
    import torch

    rows, began = 0, time.perf_counter()
    with torch.inference_mode():
        while time.perf_counter() - began < seconds:
            for start in range(0, len(texts), batch):
                chunk = texts[start:start + batch]
                plain_forward(backbone, chunk, split_overhead)
                rows += len(chunk)
    return rows / (time.perf_counter() - began)


def engine_rows_per_second(engine, texts: list[str], states: list, batch: int, seconds: float) -> float:
    """The served forward in-process: Engine.predict (tokenize, compose, forward, scores) on batches of
    `batch` rows, each row with its own profile: what the server computes, without HTTP."""
    rows, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        for start in range(0, len(texts), batch):
            chunk = texts[start:start + batch]
            engine.predict(chunk, states[:len(chunk)])
            rows += len(chunk)
    return rows / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--items", type=int, default=8, help="items (profile, text) per request")
    parser.add_argument("--texts", type=int, default=256, help="distinct news texts to draw from")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0, help="client time per round")
    parser.add_argument("--backbone-seconds", type=float, default=4.0, help="in-process time per round")
    parser.add_argument("--hot-fraction", type=float, default=None,
                        help="a random fraction of the profiles is hot: only they are warmed, and an item names "
                             "one of them with probability --hot-share, else any profile (cache misses)")
    parser.add_argument("--hot-share", type=float, default=0.9)
    parser.add_argument("--max-queue-seconds", type=float, default=60.0,
                        help="the server's admission bound; high, so that this measures throughput, not 429s")
    parser.add_argument("--profile-stacks", type=Path, default=None,
                        help="record the server's Python stacks with py-spy during round 1 into this raw file "
                             "and print the frames most often on the stack")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import httpx

    from profilekit.settings import Settings

    load_before = os.getloadavg()[0]  # other work on the machine skews both sides (see docs/benchmarks.md)
    texts, categories = news_sample(args.texts)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as folder:
        settings = Settings(data_dir=Path(folder))
        began = time.perf_counter()
        key, ids, stored, engine = make_profiles(settings, args.profiles, categories)
        report("profiles", f"{len(ids)} X-PEFT hard (k=50, N={settings.default_pool_size} random pool), "
                           "random masks saved by the engine, not trained")
        report("profile_setup_seconds", time.perf_counter() - began)
        report("artifact_stored_bytes", stored)
        rng = random.Random(1)
        hot = rng.sample(ids, max(1, round(args.hot_fraction * len(ids)))) if args.hot_fraction else None
        process, url, server_output = start_server(
            Path(folder), {"PROFILEKIT_MAX_QUEUE_SECONDS": str(args.max_queue_seconds)})
        errors: list[str] = []
        try:
            warm = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300)
            warmed = hot or ids
            for start in range(0, len(warmed), 64):  # every (hot) artifact loaded once, as in steady serving
                chunk = warmed[start:start + 64]
                response = warm.post("/v1/predict", json={"items": [{"profile_id": p, "text": texts[0]}
                                                                    for p in chunk]})
                if response.status_code != 200:
                    raise SystemExit(f"warming the cache failed: {response.status_code} {response.text}")
            backbone_rows_per_second(engine.backbone, texts, settings.max_batch_size, 0)  # one warm-up pass
            states = [engine.new_state("xpeft_hard", categories[:5], seed=i, k=50) for i in range(64)]
            engine_rows_per_second(engine, texts, states, settings.max_batch_size, 0)
            ratios, backbone_rates, served_rates, latencies, engine_rates, split_rates = [], [], [], [], [], []
            client_cpu, server_cpu = [], []
            rows = wall = batch_rows = batches = refused = 0.0
            for round_ in range(args.rounds):
                rate = backbone_rows_per_second(engine.backbone, texts, settings.max_batch_size,
                                                args.backbone_seconds)
                before = batch_metrics(url)
                spy = record_stacks(process.pid, args.seconds, args.profile_stacks) \
                    if args.profile_stacks and round_ == 0 else None
                cpu_before = cpu_seconds(os.getpid()), cpu_seconds(process.pid)
                served = asyncio.run(clients(url, key, ids, texts, concurrency=args.clients, items=args.items,
                                             seconds=args.seconds, seed=round_, hot=hot, hot_share=args.hot_share))
                cores = (os.cpu_count() or 1) * served["wall"]  # the machine's CPU seconds in the round
                client_cpu.append((cpu_seconds(os.getpid()) - cpu_before[0]) / cores)
                server_cpu.append((cpu_seconds(process.pid) - cpu_before[1]) / cores)
                after = batch_metrics(url)
                if spy is not None:
                    spy.wait(60)
                backbone_rates.append(rate)
                split_rates.append(backbone_rows_per_second(engine.backbone, texts, settings.max_batch_size,
                                                            args.backbone_seconds, settings.length_split_overhead))
                engine_rates.append(engine_rows_per_second(engine, texts, states, settings.max_batch_size,
                                                           args.backbone_seconds))
                served_rates.append(served["rows"] / served["wall"])
                ratios.append(served_rates[-1] / rate)
                latencies += served["latencies"]
                errors += served["errors"]
                refused += served["refused"]
                rows, wall = rows + served["rows"], wall + served["wall"]
                batch_rows, batches = batch_rows + after[0] - before[0], batches + after[1] - before[1]
        except BaseException:
            errors = ["the benchmark stopped"]
            raise
        finally:
            stop_server(process)
            if errors:  # show what the server said
                print("server output (last lines):\n" + "".join(server_output), file=sys.stderr)
    if errors:
        print(f"{len(errors)} requests failed; the first: {errors[0]}", file=sys.stderr)
    if not latencies:
        raise SystemExit("no request succeeded")
    latencies.sort()
    report("clients", args.clients)
    report("items_per_request", args.items)
    report("rounds", args.rounds)
    report("requests", len(latencies))
    report("failed_requests", len(errors))
    report("refused_requests_429", int(refused))
    if hot:
        report("hot_profiles", f"{len(hot)} of {len(ids)}; an item names a hot one with p={args.hot_share}")
    report("requests_per_second", len(latencies) / wall)
    report("served_rows_per_second", rows / wall)
    report("latency_p50_ms", 1000 * latencies[len(latencies) // 2])
    report("latency_p99_ms", 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))])
    report("mean_batch_size", batch_rows / batches)
    report("backbone_rows_per_second", statistics.median(backbone_rates))
    report("served_throughput_ratio", statistics.median(ratios))
    engine_ratios = [s / e for s, e in zip(served_rates, engine_rates, strict=True)]
    report("engine_rows_per_second", statistics.median(engine_rates))
    report("served_over_engine_ratio", statistics.median(engine_ratios))  # what HTTP and batching cost
    split_ratios = [s / b for s, b in zip(served_rates, split_rates, strict=True)]
    report("backbone_split_rows_per_second", statistics.median(split_rates))
    report("served_over_split_backbone_ratio", statistics.median(split_ratios))  # the cut by length left out
    report("client_cpu_share", statistics.median(client_cpu))  # of every core, during the client time
    report("server_cpu_share", statistics.median(server_cpu))
    for name, values in (("served_throughput_ratio", ratios), ("served_rows_per_second", served_rates),
                         ("backbone_rows_per_second", backbone_rates), ("engine_rows_per_second", engine_rates),
                         ("served_over_engine_ratio", engine_ratios),
                         ("served_over_split_backbone_ratio", split_ratios)):
        report(f"{name}_per_round", " ".join(f"{v:.3f}" for v in values))
    if args.profile_stacks and args.profile_stacks.exists():
        for frame, share in stack_summary(args.profile_stacks):
            report(f"stack_share {frame}", f"{share:.3f}")
    report("load_average_1min_before_after", f"{load_before:.2f} {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
