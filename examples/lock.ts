/**
 * Seed program 6: ten processes share one Lock, so that their lines never mix.
 *
 * Python:
 *   def f(l, i):
 *       l.acquire()
 *       try:
 *           print('hello world', i)
 *       finally:
 *           l.release()
 *   if __name__ == '__main__':
 *       lock = Lock()
 *       for num in range(10):
 *           Process(target=f, args=(lock, num)).start()
 *
 * Run: deno run -A examples/lock.ts | bun examples/lock.ts | node examples/lock.ts
 */
import { Lock, Process } from "../mod.ts";

export async function f(l: Lock, i: number): Promise<void> {
  await l.acquire();
  try {
    console.log("hello world", i);
  } finally {
    l.release();
  }
}

if (import.meta.main) {
  const lock = new Lock();
  for (let num = 0; num < 10; num++) {
    new Process({ target: f, args: [lock, num] }).start();
  }
}
