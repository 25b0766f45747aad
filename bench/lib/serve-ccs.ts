// The ccs server (`ccs start …` from the sources) as a benchmark child: same as bench/server.ts, plus the memory probe.
import { main } from '../../src/cli/main.js';
import { installProbe } from './probe.js';

installProbe();
await main(process.argv.slice(2));
