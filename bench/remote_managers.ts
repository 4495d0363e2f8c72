/**
 * Remote managers: a remote SyncManager's dict, set+get pairs from a client
 * in another OS process over loopback TCP, beside Python 3.11's remote
 * BaseManager (bench/python/remote_manager.py) measured in the same run.
 * Sequential pairs from one caller, then 8 callers at once (8 async loops
 * here, 8 threads in Python): each caller gets its own connection in both.
 * Seven runs of each after one unrecorded (bench/measure.ts), in Python too.
 */
import { spawn } from "node:child_process";
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

/** The command that runs a TypeScript program on this runtime. */
function runtime(): string[] {
  return "Deno" in globalThis ? [process.execPath, "run", "-A"] : [process.execPath];
}

if (import.meta.main) {
  const [command, ...args] = runtime();
  const server = spawn(command, [...args, new URL("./raw/remote_manager_server.ts", import.meta.url).pathname], {
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
  const manager = new SyncManager({ address: ["127.0.0.1", port], authkey: "bench" });
  await manager.connect();
  const d = manager.dict<string, number>();
  await d.set("warm", 0);
  const sequential = await sample(async () => {
    const t0 = performance.now();
    await pairs(d, N, "k");
    return N / ((performance.now() - t0) / 1_000);
  });
  const each = Math.floor(N / CALLERS);
  const concurrent = await sample(async () => {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CALLERS }, (_, i) => pairs(d, each, `k${i}`)));
    return (each * CALLERS) / ((performance.now() - t0) / 1_000);
  });
  await manager.shutdown();
  server.kill();
  const figure = (name: string) => pythonSamples("remote_manager.py", name);
  printRow({
    area: "remote_managers",
    name: "remote dict set+get pairs, one caller, loopback TCP",
    unit: "pairs/s",
    better: "higher",
    ours: sequential,
    against: { "python 3.11 remote BaseManager": figure("remote_manager_dict_set_get") },
  });
  printRow({
    area: "remote_managers",
    name: `remote dict set+get pairs, ${CALLERS} callers at once`,
    unit: "pairs/s",
    better: "higher",
    ours: concurrent,
    against: { "python 3.11 remote BaseManager, 8 threads": figure("remote_manager_dict_set_get_8_threads") },
  });
}
