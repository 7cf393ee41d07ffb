/** noVNC ships no types; the page uses the RFB class through the small interface in components/vnc.tsx. */
declare module '@novnc/novnc' {
  const RFB: unknown;
  export default RFB;
}
