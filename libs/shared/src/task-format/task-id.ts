/** Task ids as the deployed pool accepts them. */
export const TASK_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Returns null when valid, else a message that says what is wrong. */
export function checkTaskId(id: unknown): string | null {
  if (typeof id !== 'string' || id.length === 0) return 'task_id is empty';
  if (id.length > 64) return `task_id is ${id.length} characters long; at most 64 are allowed`;
  if (!TASK_ID_PATTERN.test(id)) return 'task_id may only contain letters, digits, "_" and "-"';
  return null;
}
