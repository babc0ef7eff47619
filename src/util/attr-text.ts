/**
 * util/attr-text: the quoting of file and attribute names in the text getfattr writes and `setfattr --restore`
 * reads (the attr package's dump format): bytes that are unusual, a backslash, `=` or `"` become `\ooo` octal
 * escapes.
 */

/** A name as getfattr writes it. */
export function quoteAttrName(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name)) {
    out +=
      byte <= 0x20 || byte >= 0x7f || byte === 0x5c || byte === 0x3d || byte === 0x22
        ? `\\${byte.toString(8).padStart(3, '0')}`
        : String.fromCharCode(byte);
  }
  return out;
}

/** The name getfattr's quoted text stands for. */
export function unquoteAttrName(text: string): string {
  return Buffer.from(
    text.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))),
    'latin1',
  ).toString('utf8');
}
