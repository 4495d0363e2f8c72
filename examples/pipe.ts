/**
 * Seed program 4: parent and child talk over the two ends of a pipe.
 *
 * Python:
 *   def f(conn):
 *       conn.send("Father, how are you doing?")
 *       print("son receive:", conn.recv())
 *       conn.close()
 *   if __name__ == '__main__':
 *       parent_conn, child_conn = Pipe()
 *       p = Process(target=f, args=(child_conn,))
 *       p.start()
 *       print("father receive:", parent_conn.recv())
 *       parent_conn.send("Son, how are you doing?")
 *       p.join()
 *
 * (The article's printed output shortens the first message to "Father, how
 * are you?"; the program prints what it sends, as Python does.)
 *
 * Run: deno run -A examples/pipe.ts | bun examples/pipe.ts | node examples/pipe.ts
 */
import { type Connection, Pipe, Process } from "../mod.ts";

export async function f(conn: Connection<string>): Promise<void> {
  conn.send("Father, how are you doing?");
  console.log("son receive:", await conn.recv());
  conn.close();
}

if (import.meta.main) {
  const [parentConn, childConn] = Pipe<string>();
  const p = new Process({ target: f, args: [childConn] });
  p.start();
  console.log("father receive:", await parentConn.recv());
  parentConn.send("Son, how are you doing?");
  await p.join();
}
