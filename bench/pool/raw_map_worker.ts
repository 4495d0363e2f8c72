// The worker of bench/pool/raw_map.ts: each chunk (a Float64Array) comes back as a new one, x + 1 each.
import { workerPort } from "../raw/worker.ts";

const port = workerPort();
port.onMessage((chunks: Float64Array[]) => {
  for (const chunk of chunks) {
    const out = new Float64Array(chunk.length);
    for (let i = 0; i < chunk.length; i++) out[i] = chunk[i] + 1;
    port.post(out, [out.buffer]);
  }
});
