/**
 * The server side of bench/remote_managers.ts, as its own OS process: a
 * SyncManager serving on loopback TCP. Prints `ready <port>`, serves until a
 * client asks it to shut down. With `echo`: the floor instead, a bare
 * `node:net` server echoing every byte on each of its connections, until
 * killed.
 */
import { createServer } from "node:net";
import { SyncManager } from "../../src/managers/remote/mod.ts";

if (process.argv[2] === "echo") {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("data", (chunk) => socket.write(chunk));
    socket.on("error", () => {});
  });
  server.listen({ host: "127.0.0.1", port: 0 }, () => {
    console.log(`ready ${(server.address() as { port: number }).port}`);
  });
} else {
  const manager = new SyncManager({ address: ["127.0.0.1", 0], authkey: "bench" });
  const server = await manager.getServer();
  console.log(`ready ${(server.address as [string, number])[1]}`);
  await server.serveForever();
}
