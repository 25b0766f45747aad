export * from './types.js';
export * from './model.js';
export * from './values.js';
export * from './physical.js';
export * from './registry.js';
export * from './csdl.js';
export * from './entity-definitions.js';
export * from './standard/index.js';
