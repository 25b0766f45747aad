export * from './records-service.js';
export {
  RECORD_EVENT_CONSUMER_TABLE,
  RECORD_EVENT_TABLE,
  RECORD_EVENT_TABLES,
  RecordEventLog,
  type ConsumeOptions,
  type DurableRecordEvent,
  type RecordEventConsumer,
  type RecordEventHandler,
  type RecordEventLogDeps,
  type RecordEventLogOptions,
} from './record-event-log.js';
