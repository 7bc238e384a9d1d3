// pino-roll ships no types: the part of its API the log files use.
declare module 'pino-roll' {
  import type { SonicBoom } from 'sonic-boom';

  export interface PinoRollOptions {
    /** Base path: files are `<file>.<n><extension>`. */
    file: string;
    /** Size at which a file is rotated: a number in MB, or with a k, m or g unit. */
    size?: string | number;
    frequency?: 'daily' | 'hourly' | number;
    extension?: string;
    mkdir?: boolean;
    limit?: { count?: number; removeOtherLogFiles?: boolean };
  }

  export default function pinoRoll(options: PinoRollOptions): Promise<SonicBoom>;
}
