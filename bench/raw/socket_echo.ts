/**
 * The serving side of bench/sockets.ts, run as its own OS program on the
 * same runtime: `ours` serves a `Listener` (the same protocol as
 * bench/python/sockets.py: "echo" then messages until None, or "sink", a
 * count, and that many messages answered by the count); `raw` is a bare
 * `node:net` echo of every byte, the floor. Prints the port, serves one
 * connection, exits.
 */
import { createServer } from "node:net";
import { Listener } from "../../src/connection/mod.ts";

const mode = process.argv[2];
if (mode === "raw") {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("data", (chunk) => socket.write(chunk));
    socket.on("end", () => {
      socket.end();
      server.close();
    });
  });
  server.listen({ host: "127.0.0.1", port: 0 }, () => {
    console.log(JSON.stringify({ port: (server.address() as { port: number }).port }));
  });
} else {
  await using listener = new Listener(["127.0.0.1", 0], { authkey: "bench" });
  await listener.listening;
  console.log(JSON.stringify({ port: (listener.address as [string, number])[1] }));
  const conn = await listener.accept();
  for (;;) {
    const command = await conn.recv();
    if (command === "echo") {
      for (let m = await conn.recv(); m !== null; m = await conn.recv()) conn.send(m);
    } else if (command === "sink") {
      const n = await conn.recv() as number;
      for (let i = 0; i < n; i++) await conn.recv();
      await conn.send(n);
    } else break;
  }
  conn.close();
}
