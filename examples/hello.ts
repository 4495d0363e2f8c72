/**
 * Seed program 1: ten processes, each says hello after a short sleep.
 *
 * Python:
 *   def run(name):
 *       time.sleep(2); print('hello', name)
 *   if __name__ == '__main__':
 *       for i in range(10):
 *           multiprocessing.Process(target=run, args=('bob%s' % i,)).start()
 *
 * Run: deno run -A examples/hello.ts | bun examples/hello.ts | node examples/hello.ts
 */
import { Process } from "../mod.ts";

export async function run(name: string): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 200));
  console.log("hello", name);
}

if (import.meta.main) {
  // As in Python, nothing is joined: the program ends when its children have.
  for (let i = 0; i < 10; i++) {
    new Process({ target: run, args: [`bob${i}`] }).start();
  }
}
