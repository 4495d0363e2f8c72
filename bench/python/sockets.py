"""multiprocessing.connection over loopback TCP: round trip and one-way throughput.

A child process serves a Listener(authkey); main connects with Client. Round trip: main sends
{"i": i, "s": "x"}, the child echoes it; 10 000 trips after 1 000 unrecorded. One-way: main sends
100 000 of them, the child receives all and answers with their count. Medians of 7 runs.
"""

import multiprocessing as mp
import time
from multiprocessing.connection import Client, Listener

from _report import RUNS, emit, figure

TRIPS = 10_000
WARMUP = 1_000
N = 100_000
KEY = b"bench"
TIMEOUT = 60


def serve(report):
    with Listener(("127.0.0.1", 0), authkey=KEY) as listener:
        report.send(listener.address)
        with listener.accept() as conn:
            while True:
                mode = conn.recv()
                if mode == "echo":
                    while (m := conn.recv()) is not None:
                        conn.send(m)
                elif mode == "sink":
                    n = conn.recv()
                    for _ in range(n):
                        conn.recv()
                    conn.send(n)
                else:
                    return


def round_trips(conn, n):
    conn.send("echo")
    for i in range(n):
        conn.send({"i": i, "s": "x"})
        if not conn.poll(TIMEOUT):
            raise SystemExit("echo stopped answering")
        if conn.recv()["i"] != i:
            raise SystemExit("echo out of order")
    conn.send(None)


def one_way(conn, n):
    conn.send("sink")
    conn.send(n)
    for i in range(n):
        conn.send({"i": i, "s": "x"})
    if not conn.poll(TIMEOUT) or conn.recv() != n:
        raise SystemExit("sink lost messages")


def main():
    here, there = mp.Pipe()
    child = mp.Process(target=serve, args=(there,))
    child.start()
    address = here.recv()
    with Client(address, authkey=KEY) as conn:
        round_trips(conn, WARMUP)
        trips = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            round_trips(conn, TRIPS)
            trips.append((time.perf_counter() - t0) / TRIPS * 1e6)
        one_way(conn, N // 10)
        rates = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            one_way(conn, N)
            rates.append(N / (time.perf_counter() - t0))
        conn.send("stop")
    child.join(TIMEOUT)
    assert child.exitcode == 0, child.exitcode
    emit("sockets", [
        figure("socket_round_trip", "us", trips, "lower"),
        figure("socket_one_way", "items/s", rates, "higher"),
    ])


if __name__ == "__main__":
    mp.set_start_method("spawn")
    main()
