/**
 * The server side of bench/remote_managers.ts, as its own OS process: a
 * SyncManager serving on loopback TCP. Prints `ready <port>`, serves until a
 * client asks it to shut down.
 */
import { SyncManager } from "../../src/managers/remote/mod.ts";

const manager = new SyncManager({ address: ["127.0.0.1", 0], authkey: "bench" });
const server = await manager.getServer();
console.log(`ready ${(server.address as [string, number])[1]}`);
await server.serveForever();
