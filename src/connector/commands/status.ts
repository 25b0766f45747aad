/** Names and values the command processes share (ms-connected-service.md §2.4 and our `ccs_` columns). */
export const COMMAND = 'msdyn_iotdevicecommand';
export const COMMAND_ID = 'msdyn_iotdevicecommandid';
export const STATUS_COLUMN = 'msdyn_commandstatus';
export const REASON = 'msdyn_commandstatusreason';
export const TTL_COLUMN = 'ccs_timetolive';
export const PARENT_COMMAND = 'ccs_parentcommand';
export const CATEGORY = 'ccs_category';
export const SEND_TO_ALL = 'msdyn_sendtoallconnecteddevices';
export const RESPONSE_PAYLOAD = 'ccs_responsepayload';
export const RESPONSE_STATUS = 'ccs_responsestatus';
/** `msdyn_commandstatusreason` is Memo(2000). */
export const REASON_MAX = 2000;
/** `ccs_responsepayload` is Memo(131072). */
export const RESPONSE_PAYLOAD_MAX = 131072;

/** `msdyn_commandstatus` (COMMAND_STATUS in metadata/standard/iot.ts). */
export const COMMAND_STATUS_VALUE = {
  inProgress: 192350000,
  sent: 192350001,
  error: 192350002,
  delivered: 192350003,
  expired: 192350004,
} as const;
