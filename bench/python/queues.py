"""multiprocessing.Queue one-way throughput: child -> main and child -> child."""

import multiprocessing as mp
import time

from _report import emit, figure, sample

N = 100_000
# Generous bound so a broken run fails instead of hanging the bench runner.
TIMEOUT = 60



def produce(q, n, ready, go):
    ready.set()
    if not go.wait(TIMEOUT):
        raise SystemExit("producer never got the go signal")
    for i in range(n):
        q.put({"i": i, "s": "x"})


def consume(q, n, ready, done):
    ready.set()
    last = None
    for _ in range(n):
        last = q.get(timeout=TIMEOUT)
    if last != {"i": n - 1, "s": "x"}:
        raise SystemExit(f"consumer saw {last!r} last")
    done.set()


def child_to_main(n):
    q = mp.Queue()
    ready, go = mp.Event(), mp.Event()
    p = mp.Process(target=produce, args=(q, n, ready, go))
    p.start()
    assert ready.wait(TIMEOUT), "producer did not start"
    # The clock starts after the child is up: spawn cost is pool.py's business.
    t0 = time.perf_counter()
    go.set()
    last = None
    for _ in range(n):
        last = q.get(timeout=TIMEOUT)
    t1 = time.perf_counter()
    assert last == {"i": n - 1, "s": "x"}, last
    p.join(TIMEOUT)
    assert p.exitcode == 0, p.exitcode
    return n / (t1 - t0)


def child_to_child(n):
    q = mp.Queue()
    p_ready, c_ready, go, done = mp.Event(), mp.Event(), mp.Event(), mp.Event()
    producer = mp.Process(target=produce, args=(q, n, p_ready, go))
    consumer = mp.Process(target=consume, args=(q, n, c_ready, done))
    producer.start()
    consumer.start()
    assert p_ready.wait(TIMEOUT) and c_ready.wait(TIMEOUT), "children did not start"
    t0 = time.perf_counter()
    go.set()
    assert done.wait(TIMEOUT), "consumer did not finish"
    t1 = time.perf_counter()
    for p in (producer, consumer):
        p.join(TIMEOUT)
        assert p.exitcode == 0, p.exitcode
    return n / (t1 - t0)


def main():
    # Every run starts its own processes, so nothing carries over for a warm-up run to warm: ~5 s saved.
    c2m = sample(lambda: child_to_main(N), warmup=0)
    c2c = sample(lambda: child_to_child(N), warmup=0)
    emit("queue", [
        figure("queue_child_to_main", "items/s", c2m, "higher"),
        figure("queue_child_to_child", "items/s", c2c, "higher"),
    ])


if __name__ == "__main__":
    mp.set_start_method("spawn")
    main()
