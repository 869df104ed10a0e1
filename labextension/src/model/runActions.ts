/**
 * The changes a user makes to a run (rename, tags, pin, notes, delete, cancel): one function
 * that sends each to the server, for the runs panel and the run detail alike, and who may make
 * them (the owner and the team's admins; see Identity).
 */
import { cancelRun, deleteRun, IRun, patchRun } from '../api';
import { Identity } from './Identity';

export type RunChange =
  | { kind: 'rename'; name: string }
  | { kind: 'tags'; tags: string[] }
  | { kind: 'notes'; notes: string }
  | { kind: 'pin'; pinned: boolean }
  | { kind: 'delete' }
  | { kind: 'cancel' };

export type RunChangeKind = RunChange['kind'];

/** Every change only the run's owner (or an admin) may make. */
export const OWNER_CHANGES: readonly RunChangeKind[] = [
  'rename',
  'tags',
  'notes',
  'pin',
  'delete',
  'cancel'
];

/**
 * Send a change; the run as changed (rename, tags, notes, pin), or null (deleted, cancelled: the
 * run is read again by whoever shows it). Throws the server's refusal (`ApiError`, 403 for a
 * run of someone else's).
 */
export async function applyRunChange(
  id: string,
  change: RunChange
): Promise<IRun | null> {
  switch (change.kind) {
    case 'rename':
      return patchRun(id, { name: change.name });
    case 'tags':
      return patchRun(id, { tags: change.tags });
    case 'notes':
      return patchRun(id, { notes: change.notes });
    case 'pin':
      return patchRun(id, { pinned: change.pinned });
    case 'delete':
      await deleteRun(id);
      return null;
    case 'cancel':
      await cancelRun(id);
      return null;
  }
}

/** A job that can still be cancelled (queued or running). */
export function isCancellable(run: IRun): boolean {
  return (
    !!run.kind &&
    run.kind !== 'interactive' &&
    (run.status === 'queued' || run.status === 'running')
  );
}

/**
 * Whether `change` is offered for `run`: the owner's (or an admin's) changes only to them (no
 * identity: a single seat, all), and Cancel only while the job can be cancelled.
 */
export function offersChange(
  identity: Identity | null,
  run: IRun | null | undefined,
  kind: RunChangeKind
): boolean {
  if (!run || (identity && !identity.mayChange(run.owner))) {
    return false;
  }
  return kind !== 'cancel' || isCancellable(run);
}

/** Tags as typed, comma-separated (`baseline, lr sweep`): trimmed, de-duplicated, in order. */
export function parseTags(text: string): string[] {
  const seen = new Set<string>();
  for (const tag of text.split(',')) {
    const t = tag.trim();
    if (t) {
      seen.add(t);
    }
  }
  return [...seen];
}
