/**
 * The thermostat fleet simulator (`ccs simulate`; issue 3 part 9): devices on the unmodified Azure IoT device SDK
 * over MQTT/TLS that send Temperature and Humidity readings and answer Microsoft's sample commands. In-process use
 * (tests, demos):
 *
 *   const sim = createSimulator({ devices: 3, rate: 5, server: url, token: adminToken, ca: app.tls().ca });
 *   await sim.start();
 *   …
 *   await sim.stop();
 */
export { createSimulator, deviceIds, type Simulator, type SimulatorOptions } from './simulator.js';
export { SimulatedDevice, MAX_IN_FLIGHT } from './device.js';
export { provisionDevices, ProvisionError, type ProvisionOptions } from './provision.js';
export { Thermostat, DEFAULT_SET_POINT, FIRMWARE_VERSION, type Reading, type ReportedState } from './thermostat.js';
export { COMMAND_NAMES, CommandError, commandFrom, parseCommandMessage, parseMethodCall, type ThermostatCommand } from './commands.js';
export { createStats, type SimulatorStats } from './stats.js';
export { createProgressLine, formatProgress, type ProgressLine } from './progress.js';
