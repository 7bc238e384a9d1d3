#!/usr/bin/env node
/**
 * npm run vpn-join -- <master-url>: joins the HiveMind WireGuard network. Asks the
 * master for a config (POST {"client_name": <node id>} to <master-url>/api/vpn/join),
 * writes it to wg0.conf with mode 0600, and brings it up with wg-quick when that is
 * installed and permitted; otherwise prints the exact steps to do it by hand.
 * Without a master URL, generates a key pair for manual setup and prints the public
 * key. The private key is never printed or logged.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadWorkerConfig } from '@hivemind/shared/config/worker-config';
import { generateKeyPair, interfaceAddress, requestJoin, writePrivateFile } from '@hivemind/shared/vpn/wireguard';
import { errorMessage } from '@hivemind/shared/util/errors';

const USAGE = `usage: npm run vpn-join -- [<master-url> | --vpn-join <master-url>] [options]

  <master-url>        the HiveMind master, e.g. https://master.example.org
                      (without it: generate a key pair for manual setup)
  --node-id ID        client name to register (default: NODE_ID)
  --out FILE          where to write the config (default: ./.data/wireguard/wg0.conf)
  --ca FILE           PEM CA to trust for the master's certificate
  --no-up             write the config, do not run wg-quick
  -h, --help          this text

exit status: 0 joined (tunnel up, or steps printed), 1 wg-quick failed (steps printed),
2 bad arguments or the master refused`;

function manualSteps(file: string, address: string | null): string {
  return [
    'To bring the tunnel up yourself:',
    '  sudo apt-get install wireguard-tools          # if wg-quick is missing',
    `  sudo install -m 600 ${file} /etc/wireguard/wg0.conf`,
    '  sudo wg-quick up wg0',
    '  sudo systemctl enable wg-quick@wg0            # to bring it up at every boot',
    address
      ? `Then start the worker; with ADVERTISE_HOST unset it advertises the wg0 address (${address}), or set ADVERTISE_HOST=${address}.`
      : 'Then start the worker with ADVERTISE_HOST set to this node\'s address in the VPN.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'vpn-join': { type: 'string' },
        'node-id': { type: 'string' },
        out: { type: 'string' },
        ca: { type: 'string' },
        'no-up': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    console.error(`${errorMessage(err)}\n\n${USAGE}`);
    return 2;
  }
  const o = args.values;
  if (o.help) {
    console.log(USAGE);
    return 0;
  }
  if (args.positionals.length > 1 || (args.positionals.length === 1 && o['vpn-join'])) {
    console.error(`give the master URL once\n\n${USAGE}`);
    return 2;
  }
  const masterUrl = o['vpn-join'] ?? args.positionals[0];
  const out = path.resolve(o.out ?? './.data/wireguard/wg0.conf');

  if (!masterUrl) {
    const { privateKey, publicKey } = generateKeyPair();
    const keyFile = path.join(path.dirname(out), 'private.key');
    await writePrivateFile(keyFile, `${privateKey}\n`);
    console.log(`No master URL: generated a WireGuard key pair for manual setup.
Public key (give this to the VPN's administrator):
${publicKey}
Private key: written to ${keyFile} (mode 0600); put it in the PrivateKey line of your wg0.conf.`);
    return 0;
  }

  let nodeId = o['node-id'];
  if (!nodeId) {
    try {
      nodeId = loadWorkerConfig().NODE_ID;
    } catch (err) {
      console.error(errorMessage(err));
      return 2;
    }
  }
  let ca: Buffer | undefined;
  if (o.ca) {
    try {
      ca = await fs.readFile(o.ca);
    } catch (err) {
      console.error(`--ca: cannot read ${o.ca}: ${errorMessage(err)}`);
      return 2;
    }
  }
  let config: string;
  try {
    config = await requestJoin(masterUrl, nodeId ?? '', { ca });
  } catch (err) {
    console.error(`vpn join failed: ${errorMessage(err)}`);
    return 2;
  }
  await writePrivateFile(out, config);
  const address = interfaceAddress(config);
  console.log(`Joined the VPN as ${nodeId}: config written to ${out} (mode 0600)${address ? `, address ${address}` : ''}.`);

  const why = o['no-up'] ? 'not brought up (--no-up)' : process.getuid?.() !== 0 ? 'not up: wg-quick needs root' : null;
  if (why) {
    console.log(`The tunnel is ${why}.\n${manualSteps(out, address)}`);
    return 0;
  }
  const up = spawnSync('wg-quick', ['up', out], { encoding: 'utf8' });
  if ((up.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    console.log(`The tunnel is not up: wg-quick is not installed.\n${manualSteps(out, address)}`);
    return 0;
  }
  if (up.status !== 0) {
    console.error(`wg-quick up ${out} failed (exit ${up.status}): ${(up.stderr || up.stdout || '').trim().split('\n').slice(-3).join(' / ')}`);
    console.log(manualSteps(out, address));
    return 1;
  }
  console.log(`The tunnel is up (wg-quick up ${out}).${address ? ` With ADVERTISE_HOST unset the worker advertises ${address}.` : ''}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`vpn join failed: ${errorMessage(err)}`);
    process.exit(2);
  },
);
