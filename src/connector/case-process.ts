/** The IoT Alert to Case business process: see ./case-process/index.ts. */
export { startCaseProcess } from './case-process/index.js';
