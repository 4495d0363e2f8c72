/**
 * Remote managers: a remote SyncManager's dict, set+get pairs from a client
 * in another OS process over loopback TCP, beside Python 3.11's remote
 * BaseManager (bench/python/remote_manager.py) measured in the same run.
 * Sequential pairs from one caller, then 8 callers at once (8 async loops
 * here, 8 threads in Python): each thread gets its own connection in
 * Python; here a dict's calls share one, pipelined (client.ts).
 * Seven runs of each after one unrecorded (bench/measure.ts), in Python too.
 *
 * The floor beside them, in the same runs: a bare `node:net` echo server
 * (bench/raw/remote_manager_server.ts `echo`, same runtime) and a client
 * making two round trips of a message the size of a set request per
 * "pair", one connection per caller. A set+get pair can be no faster than
 * that, whatever the manager does; the goal of 2× Python is within reach
 * only where Python's pairs are under half the floor.
 *
 * For one caller it is not (measured 2026-12-04, load 2.6-3.2, 2 cores):
 * 2× Python's ~21k pairs/s is 23 us per pair, 11.5 us per round trip,
 * while a bare loopback echo round trip between two processes took 19 us
 * in Python itself (blocking sockets, no event loop), 23.5 us on node:net
 * (Deno, Bun, Node alike) and, with the runtimes' own sockets,
 * 22.9 us (Deno.connect/Deno.listen, CPU per trip 11.4 -> 10.9 us) and
 * 19.6 us (Bun.connect/Bun.listen, 9.9 -> 9.3 us): native sockets take
 * 3-20 % off the floor, not the half the goal needs.
 */
import { spawn } from "node:child_process";
import { connect, type Socket } from "node:net";
import { type RemoteDictProxy, SyncManager } from "../src/managers/remote/mod.ts";
import { printRow, pythonSamples, sample } from "./measure.ts";

const N = 10_000;
const CALLERS = 8;

async function pairs(d: RemoteDictProxy<string, number>, n: number, key: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    await d.set(key, i);
    if ((await d.get(key)) !== i) throw new Error("the remote dict lost a write");
  }
}

/** The size of a framed `__setitem__('k', i)` request of our client, about: what the floor echoes. */
const REQUEST_BYTES = 48;

/** `n` pairs of round trips on a connection of its own to the echo server at `port`. */
async function echoPairs(port: number, n: number): Promise<void> {
  const socket: Socket = connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const message = new Uint8Array(REQUEST_BYTES);
  let got = 0;
  let answered: () => void = () => {};
  socket.on("data", (chunk: Uint8Array) => {
    got += chunk.length;
    if (got >= REQUEST_BYTES) {
      got -= REQUEST_BYTES;
      answered();
    }
  });
  for (let i = 0; i < 2 * n; i++) {
    await new Promise<void>((resolve) => {
      answered = resolve;
      socket.write(message);
    });
  }
  socket.destroy();
}

/** Starts bench/raw/remote_manager_server.ts (with `args`) on this runtime; its process and port. */
async function startServer(args: string[]): Promise<{ server: ReturnType<typeof spawn>; port: number }> {
  const [command, ...flags] = runtime();
  const server = spawn(command, [
    ...flags,
    new URL("./raw/remote_manager_server.ts", import.meta.url).pathname,
    ...args,
  ], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    server.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      const line = out.split("\n").slice(0, -1).find((l) => l.startsWith("ready "));
      if (line) resolve(Number(line.slice(6)));
    });
    server.on("exit", (code) => reject(new Error(`the bench server ended with ${code}`)));
    setTimeout(() => reject(new Error("the bench server did not start within 30 s")), 30_000).unref?.();
  });
  return { server, port };
}

/** The command that runs a TypeScript program on this runtime. */
function runtime(): string[] {
  return "Deno" in globalThis ? [process.execPath, "run", "-A"] : [process.execPath];
}

if (import.meta.main) {
  const { server, port } = await startServer([]);
  const echo = await startServer(["echo"]);
  const manager = new SyncManager({ address: ["127.0.0.1", port], authkey: "bench" });
  await manager.connect();
  const d = manager.dict<string, number>();
  await d.set("warm", 0);
  const rate = async (n: number, run: () => Promise<unknown>) => {
    const t0 = performance.now();
    await run();
    return n / ((performance.now() - t0) / 1_000);
  };
  const sequential = await sample(async () => ({
    ours: await rate(N, () => pairs(d, N, "k")),
    raw: await rate(N, () => echoPairs(echo.port, N)),
  }));
  const each = Math.floor(N / CALLERS);
  const concurrent = await sample(async () => ({
    ours: await rate(
      each * CALLERS,
      () => Promise.all(Array.from({ length: CALLERS }, (_, i) => pairs(d, each, `k${i}`))),
    ),
    raw: await rate(
      each * CALLERS,
      () => Promise.all(Array.from({ length: CALLERS }, () => echoPairs(echo.port, each))),
    ),
  }));
  await manager.shutdown();
  server.kill();
  echo.server.kill();
  const figure = (name: string) => pythonSamples("remote_manager.py", name);
  printRow({
    area: "remote_managers",
    name: "remote dict set+get pairs, one caller, loopback TCP",
    unit: "pairs/s",
    better: "higher",
    ours: sequential.ours,
    against: {
      "python 3.11 remote BaseManager": figure("remote_manager_dict_set_get"),
      "raw node:net echo, 2 round trips": sequential.raw,
    },
  });
  printRow({
    area: "remote_managers",
    name: `remote dict set+get pairs, ${CALLERS} callers at once`,
    unit: "pairs/s",
    better: "higher",
    ours: concurrent.ours,
    against: {
      "python 3.11 remote BaseManager, 8 threads": figure("remote_manager_dict_set_get_8_threads"),
      "raw node:net echo, 2 round trips, 8 connections": concurrent.raw,
    },
  });
}
