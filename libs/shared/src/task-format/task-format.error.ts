/** Why a task zip cannot run. The code is stable; the message is for people. */
export type TaskFormatCode =
  | 'NOT_A_ZIP'
  | 'EMPTY_ZIP'
  | 'UNSAFE_PATH'
  | 'SYMLINK'
  | 'TOO_MANY_ENTRIES'
  | 'TOO_LARGE'
  | 'NO_ENTRY_POINT'
  | 'BAD_MANIFEST';

export class TaskFormatError extends Error {
  constructor(
    readonly code: TaskFormatCode,
    message: string,
  ) {
    super(message);
    this.name = 'TaskFormatError';
  }
}
