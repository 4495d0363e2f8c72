/**
 * The sockets a remote manager runs on: the `Listener` and `Client` of
 * `multiprocessing.connection` (src/connection/), with their framing and
 * authkey handshake. The only place the manager meets them.
 *
 * The server runs each connection's handshake in that connection's own task
 * rather than inside `accept()`: a peer that is slow to answer its challenge
 * (or never does) must not hold up the clients behind it.
 *
 * @module
 */
import { answerChallenge, deliverChallenge } from "../../connection/handshake.ts";
import { Client, Listener } from "../../connection/listener.ts";
import { receiveArrived, receiveMessage, sendMessage, type SocketConnection } from "../../connection/socket.ts";
import { TimeoutError } from "../../errors.ts";
import type { Address } from "./protocol.ts";
import type { Acceptor, Channel } from "./server.ts";

/** How long a connecting peer may take over the handshake: Python's CONNECTION_TIMEOUT. */
const HANDSHAKE_MS = 20_000;

/**
 * A connection as the manager uses it: every message it sends is a fresh
 * pickle it never touches again, and every message it receives is
 * unpickled at once, so neither needs the copy that `sendBytes` and
 * `recvBytes` make for a caller who may keep or reuse its buffers.
 */
class ManagerChannel implements Channel {
  readonly conn: SocketConnection;

  constructor(conn: SocketConnection) {
    this.conn = conn;
  }

  sendBytes(bytes: Uint8Array): Promise<void> {
    return sendMessage(this.conn, bytes);
  }

  recvBytes(): Promise<Uint8Array> {
    return receiveMessage(this.conn);
  }

  recvArrived(): Uint8Array | undefined {
    return receiveArrived(this.conn);
  }

  close(): void {
    this.conn.close();
  }
}

/** Opens an authenticated connection to a manager's server; rejects naming the address when it cannot. */
export async function dial(address: Address, authkey: Uint8Array): Promise<Channel> {
  try {
    return new ManagerChannel(await Client(address as [string, number] | string, { authkey }));
  } catch (error) {
    // Its class stays (AuthenticationError, TimeoutError); its message names the manager when it did not.
    const where = typeof address === "string" ? address : `${address[0]}:${address[1]}`;
    if (error instanceof Error && !error.message.includes(where)) {
      error.message = `the manager at ${where}: ${error.message}`;
    }
    throw error;
  }
}

/** Listens on `address` (port 0: a free one) for connections that pass the handshake; the address bound. */
export async function listen(address: Address, authkey: Uint8Array): Promise<{ acceptor: Acceptor; address: Address }> {
  const listener = new Listener(address as [string, number] | string, { backlog: 16 });
  await listener.listening;
  const acceptor: Acceptor = {
    address: listener.address,
    accept: async () => new ManagerChannel(await listener.accept()),
    authenticate: async (channel) => {
      const conn = (channel as ManagerChannel).conn;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new TimeoutError(`a peer took over ${HANDSHAKE_MS} ms over the authkey handshake`)),
          HANDSHAKE_MS,
        );
      });
      try {
        await Promise.race([deliverChallenge(conn, authkey).then(() => answerChallenge(conn, authkey)), late]);
      } finally {
        clearTimeout(timer);
      }
    },
    close: () => listener.close(),
  };
  return { acceptor, address: listener.address };
}
