export { WebApi, type ApiRequest, type ApiResponse } from './handler.js';
export { OperationRegistry, type Operation, type OperationContext, type OperationResult } from './operations.js';
export { createHttpServer, type HttpDeps } from './server.js';
export { createWhoAmI } from './who-am-i.js';
export { AnnotationFilter, Serializer } from './serialize.js';
