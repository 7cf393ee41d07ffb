/**
 * Key names for `send-key`: QEMU's own qcodes (`a`, `ctrl`, `delete`, `ret`), libvirt's linux
 * key names (`KEY_A`, `KEY_LEFTCTRL`, `KEY_DELETE`, `KEY_ENTER`, any case), and combinations
 * joined by "-" as HMP's sendkey writes them (`ctrl-alt-delete`). All keys of one call are
 * pressed together, then released, as with `virsh send-key`.
 */
import { VirtkitError } from '../../util/errors.js';

/** QEMU 7.2's QKeyCode values (qapi/ui.json), `unmapped` left out. */
export const Qcodes: ReadonlySet<string> = new Set([
  'pause', 'ro', 'kp_comma', 'kp_equals', 'power', 'hiragana', 'henkan', 'yen', 'sleep', 'wake', 'audionext', 'audioprev', 'audiostop',
  'audioplay', 'audiomute', 'volumeup', 'volumedown', 'mediaselect', 'mail', 'calculator', 'computer', 'ac_home', 'ac_back', 'ac_forward',
  'ac_refresh', 'ac_bookmarks', 'muhenkan', 'katakanahiragana', 'lang1', 'lang2',
  'f13', 'f14', 'f15', 'f16', 'f17', 'f18', 'f19', 'f20', 'f21', 'f22', 'f23', 'f24',
  'shift', 'shift_r', 'alt', 'alt_r', 'ctrl', 'ctrl_r', 'menu', 'esc', '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', 'minus', 'equal',
  'backspace', 'tab', 'q', 'w', 'e', 'r', 't', 'y', 'u', 'i', 'o', 'p', 'bracket_left', 'bracket_right', 'ret', 'a', 's', 'd', 'f', 'g',
  'h', 'j', 'k', 'l', 'semicolon', 'apostrophe', 'grave_accent', 'backslash', 'z', 'x', 'c', 'v', 'b', 'n', 'm', 'comma', 'dot', 'slash',
  'asterisk', 'spc', 'caps_lock', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9', 'f10', 'f11', 'f12', 'num_lock', 'scroll_lock',
  'kp_divide', 'kp_multiply', 'kp_subtract', 'kp_add', 'kp_enter', 'kp_decimal', 'sysrq', 'kp_0', 'kp_1', 'kp_2', 'kp_3', 'kp_4', 'kp_5',
  'kp_6', 'kp_7', 'kp_8', 'kp_9', 'less', 'home', 'pgup', 'pgdn', 'end', 'left', 'up', 'down', 'right', 'insert', 'delete', 'stop',
  'again', 'props', 'undo', 'front', 'copy', 'open', 'paste', 'find', 'cut', 'lf', 'help', 'meta_l', 'meta_r', 'compose',
]);

/** Linux input key names (libvirt's `linux` keycode set) whose qcode is not simply the lower-cased rest. */
const LinuxNames: Readonly<Record<string, string>> = {
  ESC: 'esc', BACKSPACE: 'backspace', LEFTBRACE: 'bracket_left', RIGHTBRACE: 'bracket_right', ENTER: 'ret', LEFTCTRL: 'ctrl',
  RIGHTCTRL: 'ctrl_r', GRAVE: 'grave_accent', LEFTSHIFT: 'shift', RIGHTSHIFT: 'shift_r', KPASTERISK: 'kp_multiply', LEFTALT: 'alt',
  RIGHTALT: 'alt_r', SPACE: 'spc', CAPSLOCK: 'caps_lock', NUMLOCK: 'num_lock', SCROLLLOCK: 'scroll_lock', KPMINUS: 'kp_subtract',
  KPPLUS: 'kp_add', KPDOT: 'kp_decimal', '102ND': 'less', KPENTER: 'kp_enter', KPSLASH: 'kp_divide', PAGEUP: 'pgup', PAGEDOWN: 'pgdn',
  MUTE: 'audiomute', KPEQUAL: 'kp_equals', KPCOMMA: 'kp_comma', LEFTMETA: 'meta_l', RIGHTMETA: 'meta_r', WAKEUP: 'wake',
  NEXTSONG: 'audionext', PREVIOUSSONG: 'audioprev', STOPCD: 'audiostop', PLAYPAUSE: 'audioplay', HOMEPAGE: 'ac_home', BACK: 'ac_back',
  FORWARD: 'ac_forward', REFRESH: 'ac_refresh', BOOKMARKS: 'ac_bookmarks', CALC: 'calculator', MEDIA: 'mediaselect',
  ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`KP${i}`, `kp_${i}`])),
};

/** Most keys pressed at once (virsh's limit too). */
export const MaxKeys = 16;

/** One key name -> its qcode, or undefined. */
export function qcodeOf(name: string): string | undefined {
  const linux = /^KEY_([A-Z0-9_]+)$/i.exec(name);
  if (linux) {
    const rest = linux[1]!.toUpperCase();
    const code = LinuxNames[rest] ?? rest.toLowerCase();
    return Qcodes.has(code) ? code : undefined;
  }
  const lower = name.toLowerCase();
  return Qcodes.has(lower) ? lower : undefined;
}

/**
 * The qcodes of a `send-key` call's arguments, in order; 'argument.invalid' naming the first
 * name that is neither a qcode nor a linux key name, or more than MaxKeys keys.
 */
export function parseKeys(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const arg of args) {
    // "-" alone is not a combination; qcodes and linux names contain none
    const parts = arg.length > 1 ? arg.split('-') : [arg];
    for (const part of parts) {
      const code = qcodeOf(part);
      if (code === undefined) {
        const shown = JSON.stringify(part.slice(0, 40));
        throw new VirtkitError('argument.invalid', `keys: ${shown} is not a key name: use a QEMU qcode (a, ctrl, delete, ret, f1...) or a linux name (KEY_A, KEY_LEFTCTRL, KEY_ENTER...); see docs/screens.md`, { key: part.slice(0, 40) });
      }
      out.push(code);
    }
  }
  if (out.length === 0) throw new VirtkitError('argument.invalid', 'keys: name at least one key', {});
  if (out.length > MaxKeys) throw new VirtkitError('argument.invalid', `keys: at most ${MaxKeys} keys at once, got ${out.length}`, { count: out.length });
  return out;
}
