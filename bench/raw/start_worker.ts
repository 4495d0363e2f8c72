// Does as little as a worker can: say hello, then let itself end.
import { workerPort } from "./worker.ts";

const port = workerPort();
port.post("ready");
port.close();
