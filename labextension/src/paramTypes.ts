/**
 * Parameter types: the Python type names the tracker records, grouped as jupyter_mlp/params.py
 * groups them (`paramTypes.json` is generated from that module: one table for Python and the
 * front end). Used by the rerun form and the pipeline editor.
 */
import table from './paramTypes.json';

/** A group of the table: how a value of that type is read, checked and edited. */
export type TypeKind = keyof typeof table;

const KIND_OF = new Map<string, TypeKind>();
for (const [kind, names] of Object.entries(table) as [TypeKind, string[]][]) {
  for (const name of names) {
    KIND_OF.set(name, kind);
  }
}

/** The group of a recorded type name; null when unknown (or none was recorded). */
export function typeKind(typeName: string | null | undefined): TypeKind | null {
  return typeName ? (KIND_OF.get(typeName) ?? null) : null;
}

/** Kinds whose values travel as a JSON list. */
export function isSequenceKind(kind: TypeKind | null): boolean {
  return kind === 'list' || kind === 'tuple' || kind === 'set';
}

/** The Python type name a JSON value arrives as in the notebook (as Python records it). */
export function pythonType(value: unknown): string {
  if (value === null || value === undefined) {
    return 'None';
  }
  if (typeof value === 'boolean') {
    return 'bool';
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? 'int' : 'float';
  }
  if (typeof value === 'string') {
    return 'str';
  }
  return Array.isArray(value) ? 'list' : 'dict';
}

/** A short description of the kind of a value ("an int", "a string"). */
export function describeKind(value: unknown): string {
  switch (pythonType(value)) {
    case 'None':
      return 'null';
    case 'bool':
      return 'a bool';
    case 'int':
      return 'an int';
    case 'float':
      return 'a float';
    case 'str':
      return 'a string';
    case 'list':
      return 'a list';
    default:
      return 'a dict';
  }
}

const EXPECTED: Partial<Record<TypeKind, string>> = {
  int: 'an int',
  float: 'a float',
  bool: 'a bool',
  str: 'a string',
  list: 'a list',
  tuple: 'a list',
  set: 'a list',
  dict: 'a dict'
};

/** What a type name expects, for messages; null for types that take anything. */
export function expectedKind(
  typeName: string | null | undefined
): string | null {
  const kind = typeKind(typeName);
  return kind ? (EXPECTED[kind] ?? null) : null;
}

/** Whether a value fits a parameter of the given Python type (ints fit floats). */
export function fits(
  typeName: string | null | undefined,
  value: unknown
): boolean {
  if (value === null || value === undefined || !expectedKind(typeName)) {
    return true;
  }
  const kind = typeKind(typeName);
  switch (kind) {
    case 'int':
      return typeof value === 'number' && Number.isInteger(value);
    case 'float':
      return typeof value === 'number';
    case 'bool':
      return typeof value === 'boolean';
    case 'str':
      return typeof value === 'string';
    case 'dict':
      return (
        typeof value === 'object' && value !== null && !Array.isArray(value)
      );
    default:
      return isSequenceKind(kind) ? Array.isArray(value) : true;
  }
}
