/**
 * Seed program 2: every process is started by its parent; each prints its
 * module's name, its parent's pid and its own pid.
 *
 * Python:
 *   def info(title):
 *       print(title)
 *       print('module name:', __name__)
 *       print('parent process:', os.getppid())
 *       print('process id:', os.getpid())
 *   def f(name):
 *       info('function f'); print('hello', name)
 *   if __name__ == '__main__':
 *       info('main process line')
 *       p = Process(target=f, args=('bob',)); p.start(); p.join()
 *
 * Run: deno run -A examples/info.ts | bun examples/info.ts | node examples/info.ts
 */
import process from "node:process";
import { currentProcess, parentProcess, Process } from "../mod.ts";

export function info(title: string): void {
  console.log(title);
  // Python's __name__: "__main__" in the program, "__mp_main__" where a child re-imports it.
  console.log("module name:", import.meta.main ? "__main__" : "__mp_main__");
  // The main process's parent is the shell, as os.getppid() shows in Python.
  console.log("parent process:", parentProcess()?.pid ?? process.ppid);
  console.log("process id:", currentProcess().pid);
}

export function f(name: string): void {
  info("function f");
  console.log("hello", name);
}

if (import.meta.main) {
  info("main process line");
  const p = new Process({ target: f, args: ["bob"] });
  p.start();
  await p.join();
}
