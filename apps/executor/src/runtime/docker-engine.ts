import Docker from 'dockerode';
import { errorMessage } from '@hivemind/shared/util/errors';
import { DockerRuntimeOptions } from './docker-options';
import { DockerRuntime } from './docker.runtime';

/**
 * The Docker Engine as the runtime service sees it before a runtime exists: whether the
 * daemon answers, whether an image is there, pulling one. The one place the dockerode
 * client is made for the executor.
 */
export class DockerEngine {
  private readonly api: Docker;

  constructor(socketPath: string) {
    this.api = new Docker({ socketPath });
  }

  /** Resolves when the daemon answers; rejects with why it does not. */
  async ping(): Promise<void> {
    await this.api.ping();
  }

  /** The id of a local image, or null when it is not there. */
  async imageId(image: string): Promise<string | null> {
    return this.api
      .getImage(image)
      .inspect()
      .then((i) => i.Id, () => null);
  }

  /** Pulls an image, failing when the registry does not finish within `timeoutMs`. */
  async pull(image: string, timeoutMs = 300_000): Promise<void> {
    const stream = await this.api.pull(image);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from the registry in ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      this.api.modem.followProgress(stream, (err: Error | null) => {
        clearTimeout(timer);
        if (err) reject(new Error(errorMessage(err)));
        else resolve();
      });
    });
  }

  /** The task runtime on this engine. */
  runtime(opts: DockerRuntimeOptions): DockerRuntime {
    return new DockerRuntime(this.api, opts);
  }
}
