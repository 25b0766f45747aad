// Worker threads do not inherit tsx's loader from `node --import tsx`: this entry registers it in the worker, then
// loads the TypeScript module named in `workerData.script` (a file URL).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.script);
