/**
 * The OData query layer: pure stages from query text to the store's condition tree.
 *
 *   text ──lexer──▶ tokens ──parser──▶ AST ──compile (against metadata)──▶ Condition / OrderBy / ExpandPlan
 *
 * Nothing here touches the store or HTTP; every failure is a CcsError (InvalidQuery, UnknownProperty,
 * InvalidValue, InvalidKey, NotAcceptable or NotImplemented).
 */
export { compileFilter, compileQuery, type CompiledQuery, type ExpandPlan } from './query.js';
export { parseFunctionArgs, parseKey, type ParsedKey } from './key.js';
export type { Aliases } from './parser.js';
