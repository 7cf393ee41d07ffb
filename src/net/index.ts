/** Host networking: network definitions, subnets, bridges, taps, nftables, dnsmasq (docs/networks.md). */
export * from './definition.js';
export * from './subnet.js';
export * from './links.js';
export * from './nft.js';
export * from './dnsmasq.js';
export * from './bandwidth.js';
export { runTool } from './host.js';
