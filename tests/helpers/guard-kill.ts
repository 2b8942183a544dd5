// Vitest setup file: process.kill(0, ...) signals the caller's whole process group, and
// process.kill(-1, ...) every process the caller may signal. In a test either is a bug (a pid
// read from output that never came), and it would end vitest, npm and CI with it: session 46's
// CI died by SIGKILL this way. Both throw here instead; a real group (-pid) still passes.
const kill = process.kill.bind(process);
process.kill = (pid: number, signal?: string | number): true => {
  if (pid === 0 || pid === -1) {
    throw new Error(`process.kill(${pid}) would signal more than one test's processes`);
  }
  return kill(pid, signal);
};
