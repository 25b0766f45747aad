/** Fleet-wide counters, updated by every simulated device and read by the progress line. */
export interface SimulatorStats {
  /** Devices whose connection is open now. */
  connected: number;
  /** Readings handed to the SDK. */
  sent: number;
  /** Readings the hub acknowledged (PUBACK: durable). */
  acked: number;
  /** Readings not sent because the device was disconnected or had too many waiting for their PUBACK. */
  skipped: number;
  errors: number;
  /** Cloud-to-device command messages received. */
  commands: number;
  /** Direct method calls received. */
  methods: number;
  /** Twin reported-property patches acknowledged. */
  reportedUpdates: number;
}

export function createStats(): SimulatorStats {
  return { connected: 0, sent: 0, acked: 0, skipped: 0, errors: 0, commands: 0, methods: 0, reportedUpdates: 0 };
}
