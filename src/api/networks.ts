/**
 * The network part of the API contract (docs/networks.md): network objects (virsh's net-*
 * verbs) and a domain's interface addresses (domifaddr). The definition body is checked by
 * the daemon's own parser (net/definition.ts), so its refusals are `network.invalid` naming
 * the field rather than schema errors.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { MethodSpec } from './methods.js';
import { NameParams } from './schemas.js';

const strict = { additionalProperties: false } as const;
const NameText = Type.String({ maxLength: 256 });

export const NetworkParams = Type.Object({ network: NameText }, strict);
export type NetworkParams = Static<typeof NetworkParams>;

export const NetworkModeSchema = Type.Union([Type.Literal('nat'), Type.Literal('isolated'), Type.Literal('bridge'), Type.Literal('user')]);

export const NetworkDefinitionSchema = Type.Object({
  name: Type.String(),
  mode: NetworkModeSchema,
  bridge: Type.Optional(Type.String()),
  subnet: Type.Optional(Type.String()),
  address: Type.Optional(Type.String()),
  dhcp: Type.Optional(Type.Object({ start: Type.String(), end: Type.String() })),
  domain: Type.Optional(Type.String()),
});
export type NetworkDefinitionView = Static<typeof NetworkDefinitionSchema>;

export const NetworkDefineBody = Type.Object({
  /** The definition as read from YAML or JSON: `{name, mode, bridge?, subnet?, dhcp?, domain?}`. */
  definition: Type.Unknown(),
}, strict);
export type NetworkDefineBody = Static<typeof NetworkDefineBody>;

export const NetworkInfo = Type.Object({
  name: Type.String(),
  mode: NetworkModeSchema,
  active: Type.Boolean(),
  autostart: Type.Boolean(),
  bridge: Type.Optional(Type.String()),
  definition: NetworkDefinitionSchema,
  /** The pid of its dnsmasq while active (nat, isolated). */
  dnsmasqPid: Type.Optional(Type.Integer()),
  /** Running domains with a NIC on it. */
  domains: Type.Array(Type.String()),
});
export type NetworkInfo = Static<typeof NetworkInfo>;

export const NetworkList = Type.Object({ networks: Type.Array(NetworkInfo) });
export type NetworkList = Static<typeof NetworkList>;

export const NetworkListQuery = Type.Object({
  all: Type.Optional(Type.Boolean({ description: 'include inactive networks' })),
}, strict);
export type NetworkListQuery = Static<typeof NetworkListQuery>;

export const NetworkDestroyBody = Type.Object({
  /** Stop it even while running guests use it (their taps lose the bridge). */
  force: Type.Optional(Type.Boolean()),
}, strict);
export type NetworkDestroyBody = Static<typeof NetworkDestroyBody>;

export const NetworkAutostartBody = Type.Object({ enabled: Type.Boolean() }, strict);
export type NetworkAutostartBody = Static<typeof NetworkAutostartBody>;

export const NetworkLease = Type.Object({
  /** Unix time the lease ends. */
  expiry: Type.Integer(),
  mac: Type.String(),
  ip: Type.String(),
  prefix: Type.Integer(),
  hostname: Type.Optional(Type.String()),
  clientId: Type.Optional(Type.String()),
  /** The domain and NIC whose MAC it is, when one is defined. */
  domain: Type.Optional(Type.String()),
  nic: Type.Optional(Type.String()),
});
export type NetworkLease = Static<typeof NetworkLease>;

export const NetworkLeases = Type.Object({ network: Type.String(), leases: Type.Array(NetworkLease) });
export type NetworkLeases = Static<typeof NetworkLeases>;

export const InterfaceAddress = Type.Object({
  nic: Type.String(),
  mac: Type.String(),
  network: Type.String(),
  /** The host tap of a NIC on a virtkit network. */
  tap: Type.Optional(Type.String()),
  /** While the guest runs: whether its NIC took the vhost-net path (`auto` resolved at start). */
  vhost: Type.Optional(Type.Union([Type.Literal('on'), Type.Literal('off')])),
  /** `a.b.c.d/len` from the network's DHCP lease; absent when there is none. */
  address: Type.Optional(Type.String()),
  source: Type.Union([Type.Literal('lease'), Type.Literal('none')]),
});
export type InterfaceAddress = Static<typeof InterfaceAddress>;

export const InterfaceAddresses = Type.Object({ interfaces: Type.Array(InterfaceAddress) });
export type InterfaceAddresses = Static<typeof InterfaceAddresses>;

const OkResult = Type.Object({ ok: Type.Literal(true) });

export const NetworkMethods = {
  'network.list': { http: 'GET', path: '/networks', summary: 'List networks (active ones unless all=true)', query: NetworkListQuery, result: NetworkList, states: null, access: 'read', long: false },
  'network.define': { http: 'POST', path: '/networks', summary: 'Define a network (nat, isolated, bridge or user)', body: NetworkDefineBody, result: NetworkInfo, status: 201, states: null, access: 'admin', long: false },
  'network.info': { http: 'GET', path: '/networks/:network', summary: 'A network: its definition, state, bridge, dnsmasq and guests', params: NetworkParams, result: NetworkInfo, states: null, access: 'read', long: false },
  'network.start': { http: 'POST', path: '/networks/:network/start', summary: 'Make the network\'s bridge, nftables table and dnsmasq', params: NetworkParams, result: NetworkInfo, states: null, access: 'admin', long: false },
  'network.destroy': { http: 'POST', path: '/networks/:network/destroy', summary: 'Stop a network; refused while running guests use it unless force', params: NetworkParams, body: NetworkDestroyBody, result: NetworkInfo, states: null, access: 'admin', long: false },
  'network.undefine': { http: 'DELETE', path: '/networks/:network', summary: 'Remove an inactive network\'s definition', params: NetworkParams, result: OkResult, states: null, access: 'admin', long: false },
  'network.setAutostart': { http: 'PUT', path: '/networks/:network/autostart', summary: 'Start the network when the daemon starts', params: NetworkParams, body: NetworkAutostartBody, result: NetworkInfo, states: null, access: 'admin', long: false },
  'network.leases': { http: 'GET', path: '/networks/:network/leases', summary: 'The DHCP leases of a network', params: NetworkParams, result: NetworkLeases, states: null, access: 'read', long: false },
  'network.domainAddresses': { http: 'GET', path: '/domains/:name/interface-addresses', summary: 'A domain\'s NIC addresses, from its networks\' DHCP leases (domifaddr)', params: NameParams, result: InterfaceAddresses, states: 'any', access: 'read', long: false },
} as const satisfies Record<string, MethodSpec>;
