/**
 * MessagePorts as the library hands them to its own processes: carried into
 * a process's `args` (transferred, not copied), and kept from holding the
 * program open. What must hold it open is work still pending, and that holds
 * a timer of its own.
 *
 * @module
 */
import { reduce, type Reduction, registerKind } from "./reduction.ts";

/** Carries a MessagePort into a process's `args`, where it arrives as the port itself. */
export class PortCarrier {
  #port: MessagePort;
  constructor(port: MessagePort) {
    this.#port = port;
  }
  [reduce](): Reduction {
    return { kind: "port", state: this.#port, transfer: [this.#port] };
  }
}
registerKind("port", (port) => port);

/** Lets a port stop holding the program open (every runtime here has `unref` on MessagePort). */
export function unref(port: MessagePort): void {
  (port as MessagePort & { unref?: () => void }).unref?.();
}
