/**
 * A CPU profile of a service, for a measurement run: preloaded with
 * `BENCH_NODE_OPTIONS="--require <dist>/bench/lib/cpu-profile.js"` (Node 20 does not allow
 * `--cpu-prof` in NODE_OPTIONS). Profiles from the start and writes
 * `<BENCH_PROFILE_DIR or the tmp folder>/<service>-<pid>.cpuprofile` when the process exits;
 * open it in Chrome DevTools or summarise it with bench/lib/profile-top.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import * as os from 'node:os';
import * as path from 'node:path';

const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 1000 });
session.post('Profiler.start');
const service = process.argv[1] ? path.basename(path.dirname(path.dirname(process.argv[1]))) : "node";
process.once('exit', () => {
  // The inspector answers a same-thread session synchronously, so this runs before the exit.
  session.post('Profiler.stop', (err, res) => {
    if (err) return;
    writeFileSync(path.join(process.env.BENCH_PROFILE_DIR ?? os.tmpdir(), `${service}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
  });
});
