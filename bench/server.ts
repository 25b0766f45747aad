// Runs the ccs command from the sources, for benchmarks that start the server in a child process.
import { main } from '../src/cli/main.js';

await main(process.argv.slice(2));
