// The other half of the power-cut shim (tests/crashsim/crashsim.c): after the process
// that ran with the shim is dead, undo every write it made since the last sync of each
// file, leaving what a disk would hold after a power cut at the moment of the kill.
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const HEADER_MAGIC = 'KLUNDO1\n';
const RECORD_MAGIC = 0x4b4c5552;

// Parses one journal: {path, syncedSize, records: [{offset, bytes}]} in write order. A
// record cut short (the kill landed while it was being written) ends the list: the write
// it was to guard never happened.
export function parseUndoJournal(buf) {
  if (buf.length === 0) return null; // started, nothing recorded yet
  const magic = Buffer.from(HEADER_MAGIC, 'latin1');
  if (buf.subarray(0, Math.min(8, buf.length)).compare(magic.subarray(0, Math.min(8, buf.length))) !== 0)
    throw new Error('undo journal without its header');
  // A header cut short by the kill: nothing after it was written, so neither was the
  // file write it was opened to guard.
  if (buf.length < 20) return null;
  const syncedSize = Number(buf.readBigUInt64LE(8));
  const plen = buf.readUInt32LE(16);
  if (buf.length < 20 + plen) return null;
  const path = buf.subarray(20, 20 + plen).toString('utf8');
  const records = [];
  let pos = 20 + plen;
  while (pos + 16 <= buf.length) {
    if (buf.readUInt32LE(pos) !== RECORD_MAGIC) throw new Error(`undo journal damaged at ${pos}`);
    const offset = Number(buf.readBigUInt64LE(pos + 4));
    const len = buf.readUInt32LE(pos + 12);
    if (pos + 16 + len + 4 > buf.length) break;
    if (buf.readUInt32LE(pos + 16 + len) !== RECORD_MAGIC) break;
    records.push({ offset, bytes: buf.subarray(pos + 16, pos + 16 + len) });
    pos += 16 + len + 4;
  }
  return { path, syncedSize, records };
}

// Applies and removes every journal in journalDir. Returns what was undone per file
// ({path, records (overwrites undone), sizeBefore, syncedSize}) so a test can say how
// much was lost.
export function applyPowerCut(journalDir) {
  const undone = [];
  for (const name of readdirSync(journalDir).filter((n) => n.endsWith('.undo')).sort()) {
    const jpath = join(journalDir, name);
    const j = parseUndoJournal(readFileSync(jpath));
    if (j && existsSync(j.path)) {
      const fd = openSync(j.path, 'r+');
      let sizeBefore;
      try {
        sizeBefore = fstatSync(fd).size;
        for (const r of [...j.records].reverse()) writeSync(fd, r.bytes, 0, r.bytes.length, r.offset);
        ftruncateSync(fd, j.syncedSize);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      undone.push({ path: j.path, records: j.records.length, sizeBefore, syncedSize: j.syncedSize });
    }
    rmSync(jpath);
  }
  return undone;
}
