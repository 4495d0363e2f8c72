/**
 * The sockets a remote manager runs on: the `Listener` and `Client` of
 * `multiprocessing.connection` (src/connection/), which do the framing and
 * the authkey handshake. The only place the manager meets them.
 *
 * @module
 */
import type { Address } from "./protocol.ts";
import type { Acceptor, Channel } from "./server.ts";

/** Opens an authenticated connection to a manager's server. */
export function dial(address: Address, _authkey: Uint8Array): Promise<Channel> {
  return Promise.reject(new Error(`cannot connect to ${JSON.stringify(address)}: sockets are not there yet`));
}

/** Listens on `address` (port 0: a free one) for authenticated connections; the address bound. */
export function listen(address: Address, _authkey: Uint8Array): Promise<{ acceptor: Acceptor; address: Address }> {
  return Promise.reject(new Error(`cannot listen on ${JSON.stringify(address)}: sockets are not there yet`));
}
