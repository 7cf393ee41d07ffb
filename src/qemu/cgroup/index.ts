/** qemu/cgroup: each guest's QEMU in a cgroup of its own, with the definition's CPU and memory limits. */
export { cgroupLayoutOf, detectCgroupLayout, Controllers, ParentGroupName, type CgroupLayout, type Controller } from './layout.js';
export { parseCgroupMounts, parseProcCgroup, type CgroupMount, type ProcCgroup } from './parse.js';
export {
  CpuPeriodUs, GuestCgroup, limitFiles, parseLimitFiles, sharesToWeight, removeStaleCgroups, weightToShares, type ResourceLimits,
} from './group.js';
