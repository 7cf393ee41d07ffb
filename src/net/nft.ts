/**
 * nftables rules of a network: one table per network, `ip virtkit-NAME`, so removing the
 * network's rules is removing its table. nat: masquerade of what leaves the subnet, and
 * forwarding only for the subnet's own traffic (out freely, back in when it is a reply).
 * isolated: forwarding to or from the bridge dropped (its DHCP hands out no router either).
 */
import type { NetworkDefinition } from './definition.js';
import { runTool } from './host.js';

export function nftTableName(network: string): string {
  return `virtkit-${network}`;
}

/** The nft script that creates the table (pure; unit-tested). */
export function renderNftTable(def: NetworkDefinition): string {
  const table = nftTableName(def.name);
  const br = def.bridge!;
  const lines = [`table ip ${table} {`];
  if (def.mode === 'nat') {
    lines.push(
      '  chain forward {',
      '    type filter hook forward priority filter; policy accept;',
      `    iifname "${br}" ip saddr ${def.subnet} accept`,
      `    oifname "${br}" ip daddr ${def.subnet} ct state established,related accept`,
      `    iifname "${br}" drop`,
      `    oifname "${br}" drop`,
      '  }',
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      `    ip saddr ${def.subnet} ip daddr != ${def.subnet} masquerade`,
      '  }',
    );
  } else {
    lines.push(
      '  chain forward {',
      '    type filter hook forward priority filter; policy accept;',
      `    iifname "${br}" drop`,
      `    oifname "${br}" drop`,
      '  }',
    );
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

export async function applyNftTable(def: NetworkDefinition): Promise<void> {
  await removeNftTable(def.name);
  await runTool('nft', ['-f', '-'], { input: renderNftTable(def) });
}

export async function removeNftTable(network: string): Promise<void> {
  await runTool('nft', ['delete', 'table', 'ip', nftTableName(network)]).catch(() => undefined);
}

export async function listNftTables(): Promise<string[]> {
  const { stdout } = await runTool('nft', ['list', 'tables']);
  return stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter((p) => p[0] === 'table').map((p) => p[2] ?? '');
}
