/**
 * HTTP body limits. The message limits themselves (D2C 256 KB, C2D 64 KB, method payload 128 KB; dev-guide
 * quotas-throttling, reference/iot-hub.md §6) are the hub's and enforced there; these sit above them so that an
 * oversized message still reaches the route and gets IoT Hub's 413 MessageTooLarge with the real size, while a body
 * far beyond any limit is cut off early by the server (with the same answer). Batches carry base64 bodies, a third
 * larger than the messages they hold.
 */
export const D2C_BODY_LIMIT = 512 * 1024;
export const SERVICE_BODY_LIMIT = 512 * 1024;
