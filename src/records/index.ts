export * from './records-service.js';
