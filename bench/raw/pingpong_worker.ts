// Echoes whatever it is sent, on the MessagePort it is given and on its own
// parent channel.
import { workerPort } from "./worker.ts";

const parent = workerPort();
parent.onMessage((m) => {
  if (m.cmd === "port") {
    const port = m.port as MessagePort;
    port.onmessage = (e: MessageEvent) => port.postMessage(e.data);
    parent.post({ cmd: "ok" });
  } else {
    parent.post(m);
  }
});
