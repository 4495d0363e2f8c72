// Sends small objects to the parent, or through a MessageChannel port to a
// sibling worker, and counts what arrives on that port when it is the sink.
import { workerPort } from "./worker.ts";

const parent = workerPort();
let peer: MessagePort | null = null;
let expected = 0;
let seen = 0;

parent.onMessage((m) => {
  switch (m.cmd) {
    case "send":
      for (let i = 0; i < m.n; i++) parent.post({ i, s: "x" });
      break;
    case "peer":
      peer = m.port as MessagePort;
      // onmessage (not addEventListener) because it also starts the port.
      peer.onmessage = (e: MessageEvent) => {
        if (++seen !== expected) return;
        parent.post(e.data.i === expected - 1 ? { cmd: "done" } : { cmd: "bad", last: e.data });
      };
      parent.post({ cmd: "ok" });
      break;
    case "expect":
      expected = m.n;
      seen = 0;
      parent.post({ cmd: "armed" });
      break;
    case "produce":
      for (let i = 0; i < m.n; i++) peer!.postMessage({ i, s: "x" });
      break;
  }
});
