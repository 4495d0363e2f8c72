/**
 * A socket `Connection` (Listener/Client over loopback TCP, with an authkey)
 * between two OS programs of this runtime: round trip and one-way
 * throughput of `{ i, s: "x" }` objects, beside a bare `node:net` echo
 * between the same two programs (bench/raw/socket_echo.ts) and beside
 * Python 3.11's own Listener/Client (bench/python/sockets.py), all in the
 * same run. 10 000 round trips after 1 000 unrecorded; 100 000 objects one
 * way; seven runs of each (bench/measure.ts).
 *
 * Run: deno run -A bench/sockets.ts | bun bench/sockets.ts | node bench/sockets.ts
 */
import { type ChildProcess, spawn } from "node:child_process";
import { connect, type Socket } from "node:net";
import { adapter } from "../src/adapters/mod.ts";
import { Client, dumps, type SocketConnection } from "../src/connection/mod.ts";
import { frame } from "../src/connection/frames.ts";
import { runtimes } from "../scripts/runtimes.ts";
import { printRow, pythonSamples, RUNS } from "./measure.ts";

const TRIPS = 10_000;
const WARMUP = 1_000;
const N = 100_000;
const REPS = RUNS;
const TIMEOUT = 60_000;

/** Starts the serving program on this runtime and resolves its port. */
async function serveAs(mode: "ours" | "raw"): Promise<{ child: ChildProcess; port: number }> {
  const runtime = runtimes.find((r) => r.name === adapter.runtime)!;
  const child = spawn(runtime.run[0], [
    ...runtime.run.slice(1),
    new URL("./raw/socket_echo.ts", import.meta.url).pathname,
    mode,
  ], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 5 * TIMEOUT);
  child.once("exit", () => clearTimeout(timer));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding("utf8").once("data", (line: string) => resolve(JSON.parse(line).port));
    child.once("exit", (code) => reject(new Error(`the ${mode} server exited with ${code}`)));
  });
  return { child, port };
}

async function oursRoundTrips(conn: SocketConnection, n: number): Promise<void> {
  await conn.send("echo");
  for (let i = 0; i < n; i++) {
    await conn.send({ i, s: "x" });
    const back = await conn.recv() as { i: number };
    if (back.i !== i) throw new Error("echo out of order");
  }
  await conn.send(null);
}

async function oursOneWay(conn: SocketConnection, n: number): Promise<void> {
  await conn.send("sink");
  await conn.send(n);
  let last: Promise<void> = Promise.resolve();
  for (let i = 0; i < n; i++) last = conn.send({ i, s: "x" });
  await last;
  if (await conn.recv() !== n) throw new Error("the sink lost messages");
}

async function ours(): Promise<{ trip: number[]; rate: number[] }> {
  const { child, port } = await serveAs("ours");
  const conn = await Client(["127.0.0.1", port], { authkey: "bench" });
  await oursRoundTrips(conn, WARMUP);
  const trips: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    await oursRoundTrips(conn, TRIPS);
    trips.push((performance.now() - t0) / TRIPS * 1_000);
  }
  await oursOneWay(conn, N); // one full unrecorded run: with N / 10, the first timed runs on Bun were 3-8x slower
  const rates: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    await oursOneWay(conn, N);
    rates.push(N / ((performance.now() - t0) / 1_000));
  }
  await conn.send("stop");
  conn.close();
  await new Promise((resolve) => child.once("exit", resolve));
  return { trip: trips, rate: rates };
}

/** The raw floor: the same bytes a Connection would write (one framed pickle per object), echoed by node:net. */
async function raw(): Promise<{ trip: number[]; rate: number[] }> {
  const { child, port } = await serveAs("raw");
  const socket: Socket = connect({ host: "127.0.0.1", port });
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once("connect", resolve));
  const message = frame(dumps({ i: 1, s: "x" }));
  let received = 0;
  let want = 0;
  let wake: (() => void) | undefined;
  socket.on("data", (chunk: Uint8Array) => {
    received += chunk.length;
    if (received >= want) wake?.();
  });
  const until = (bytes: number) =>
    new Promise<void>((resolve) => {
      want = bytes;
      if (received >= want) return resolve();
      wake = resolve;
    });
  const roundTrips = async (n: number) => {
    for (let i = 0; i < n; i++) {
      socket.write(message);
      await until(received - (received % message.length) + message.length);
    }
  };
  await roundTrips(WARMUP);
  const trips: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    await roundTrips(TRIPS);
    trips.push((performance.now() - t0) / TRIPS * 1_000);
  }
  // One way: the echo server returns every byte; the sender counts the last echoed byte of the last message.
  const rates: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const start = received;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) socket.write(message);
    await until(start + N * message.length);
    rates.push(N / ((performance.now() - t0) / 1_000));
  }
  socket.end();
  await new Promise((resolve) => child.once("exit", resolve));
  return { trip: trips, rate: rates };
}

if (import.meta.main) {
  const floor = await raw();
  const mine = await ours();
  const pyFigure = (name: string, what: string) => ({ [what]: pythonSamples("sockets.py", name) });
  printRow({
    area: "sockets",
    name: "socket Connection round trip over loopback TCP, small object",
    unit: "us",
    better: "lower",
    ours: mine.trip,
    against: {
      "raw node:net echo": floor.trip,
      ...pyFigure("socket_round_trip", "python 3.11 Listener/Client"),
    },
  });
  printRow({
    area: "sockets",
    name: "socket Connection one-way over loopback TCP, small objects",
    unit: "items/s",
    better: "higher",
    ours: mine.rate,
    against: { "raw node:net echo": floor.rate, ...pyFigure("socket_one_way", "python 3.11 Listener/Client") },
    notes: "raw: the same framed pickles, counted as they come back echoed",
  });
}
