/**
 * MQTT 3.1.1 over TLS and over WebSocket for the IoT Hub-compatible endpoint (reference/iot-hub.md §1, §2).
 *
 * Mounting, in the composition root:
 *
 *   const mqtt = await createMqttGateway({ hub, tls: { cert, key }, log });
 *   const port = await mqtt.listen(config.mqttsPort, config.host);   // MQTT over TLS; 0 picks a port
 *   hub.advertise({ mqtts: port });
 *   httpsServer.on('upgrade', (req, socket, head) => {                // MQTT over WebSocket (MqttWs dials 443)
 *     if (mqtt.isUpgradeRequest(req)) mqtt.handleUpgrade(req, socket, head);
 *     else socket.destroy();
 *   });
 *   …
 *   await mqtt.close();   // before hub.close(): no transport may call a closed hub
 */
export {
  createMqttGateway,
  DEFAULT_MAX_MESSAGE_BYTES,
  MAX_SUBSCRIPTIONS,
  WEBSOCKET_PATH,
  type MqttGateway,
  type MqttGatewayOptions,
} from './gateway.js';
export type { GatewayLog } from './log.js';
