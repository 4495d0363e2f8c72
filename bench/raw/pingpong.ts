// deno-lint-ignore-file no-explicit-any -- raw messages and runtime globals are untyped here
// Round-trip latency main <-> worker: over a MessageChannel (a dedicated
// channel, as a Pipe would get) and over the worker's own channel.

import { spawnRaw } from "./worker.ts";
import { emit, nextMessage, type Report, report, REPS, sampled, WAIT_MS, withTimeout } from "./util.ts";

const N = 10_000;
const WARMUP = 1_000;

type Send = (m: any) => void;
type Listen = (cb: (m: any) => void) => void;

// Sends the next ping only when the previous pong is in, so the time per
// iteration is one full round trip with nothing overlapping it.
function roundTrips(send: Send, listen: Listen, n: number): Promise<number> {
  const run = new Promise<number>((resolve, reject) => {
    let i = 0;
    const t0 = performance.now();
    listen((m) => {
      if (m.i !== i) return reject(new Error(`pong ${m.i} for ping ${i}`));
      if (++i === n) return resolve((performance.now() - t0) * 1000 / n);
      send({ i, s: "x" });
    });
    send({ i: 0, s: "x" });
  });
  return withTimeout(run, WAIT_MS, `${n} round trips`);
}

async function sample(send: Send, listen: Listen): Promise<number[]> {
  await roundTrips(send, listen, WARMUP);
  const us: number[] = [];
  for (let r = 0; r < REPS; r++) us.push(await roundTrips(send, listen, N));
  return us;
}

export async function pingpong(): Promise<Report> {
  const w = spawnRaw(new URL("./pingpong_worker.ts", import.meta.url));
  const ch = new MessageChannel();
  try {
    w.post({ cmd: "port", port: ch.port2 }, [ch.port2]);
    const ok = await nextMessage(w, "the worker to take its port");
    if (ok?.cmd !== "ok") throw new Error(`unexpected ${JSON.stringify(ok)}`);

    const port = ch.port1;
    const viaChannel = await sample(
      (m) => port.postMessage(m),
      (cb) => {
        port.onmessage = (e: MessageEvent) => cb(e.data);
      },
    );
    const viaWorker = await sample((m) => w.post(m), (cb) => w.onMessage(cb));

    return report("pingpong", [
      sampled(
        "pingpong_messagechannel",
        "us",
        viaChannel,
        `median of ${REPS} x ${N} round trips main <-> worker over a MessageChannel`,
      ),
      sampled(
        "pingpong_worker_channel",
        "us",
        viaWorker,
        `median of ${REPS} x ${N} round trips over worker.postMessage / the worker's own port`,
      ),
    ]);
  } finally {
    // An open port keeps Node's event loop alive even after the worker is gone.
    ch.port1.close();
    await w.terminate();
  }
}

if (import.meta.main) emit(await pingpong());
