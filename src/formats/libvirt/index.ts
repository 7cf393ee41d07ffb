/** formats/libvirt/: libvirt domain XML in (import.ts) and out (export.ts), through one mapping table (mapping.ts). */
export { importLibvirtXml, QemuNamespace, type ImportIssue, type ImportOptions, type LibvirtImport } from './import.js';
export { exportLibvirtXml } from './export.js';
export { importLibvirtNetworkXml } from './network.js';
export { LibvirtMapping, renderMappingTable, type MappingRow } from './mapping.js';
export { readXml, MaxXmlBytes, MaxXmlDepth, type XmlElement } from './xml-reader.js';
export { LibvirtUnits, scaledBytes } from './units.js';
