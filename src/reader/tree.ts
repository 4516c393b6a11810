/**
 * Consistency of the file table as a tree (docs/format.md, section 7.2): every entry's parent is a
 * directory with its own entry. A table that puts entries below a regular file or a symlink, or below
 * a directory that has no entry, describes no filesystem: `verify` reports it and `extract` refuses it
 * before writing anything. Entries below a symlink are `UNSAFE_PATH` (extracting them is how a hostile
 * archive would write through the link); the others are `CORRUPT`.
 *
 * Entries are fed in table order. In that order a directory's entry always precedes its children (the
 * sort key `parent ‖ 0x00 ‖ name` of the directory is a prefix-wise smaller key than its children's
 * `parent/name ‖ 0x00 ‖ …`), so one pass with the set of directories seen so far decides; a parent
 * not seen (a partial selection, or a problem) is looked up once to say what it is.
 */
import { HexzError } from '../errors.js';
import { splitPath, type FileEntry } from '../format/file-table.js';

type Verdict = { ok: true } | { ok: false; make: (child: string) => HexzError };

export class TreeCheck {
  private readonly dirs = new Set<string>(['']);
  private readonly verdicts = new Map<string, Verdict>();
  private readonly reported = new Set<string>();

  /**
   * @param lookup the archive's entry at a path (without following symlinks), or undefined
   * @param oncePerParent report only the first entry below each bad parent (verify: no flood)
   */
  constructor(
    private readonly lookup: (path: string) => Promise<FileEntry | undefined>,
    private readonly oncePerParent = false,
  ) {}

  /** Check one entry, in table order: the problem with its place in the tree, or undefined. */
  async check(e: FileEntry): Promise<HexzError | undefined> {
    const [parent] = splitPath(e.path);
    let problem: HexzError | undefined;
    if (!this.dirs.has(parent)) {
      const v = await this.verdict(parent);
      if (!v.ok && !(this.oncePerParent && this.reported.has(parent))) {
        this.reported.add(parent);
        problem = v.make(e.path);
      }
    }
    if (e.type === 'directory') this.dirs.add(e.path);
    return problem;
  }

  /** Whether `dir` (not seen as a directory so far) can hold entries. */
  private async verdict(dir: string): Promise<Verdict> {
    const known = this.verdicts.get(dir);
    if (known) return known;
    let v: Verdict;
    const d = await this.lookup(dir);
    if (!d) {
      v = { ok: false, make: (child) => new HexzError('CORRUPT', `corrupt file table: ${child} has no parent directory entry ${dir}`, { path: child, structure: 'file table' }) };
    } else if (d.type === 'symlink') {
      v = {
        ok: false,
        make: (child) => new HexzError('UNSAFE_PATH', `hostile file table: ${child} lies below ${dir}, which is a symlink (to ${d.target ?? ''})`, { path: child, structure: 'file table' }),
      };
    } else if (d.type === 'file') {
      v = { ok: false, make: (child) => new HexzError('CORRUPT', `corrupt file table: ${child} lies below ${dir}, which is a regular file`, { path: child, structure: 'file table' }) };
    } else {
      // A directory outside what was walked (a partial selection): its own ancestors must hold too.
      const [up] = splitPath(dir);
      v = this.dirs.has(up) ? { ok: true } : await this.verdict(up);
      if (v.ok) this.dirs.add(dir);
    }
    this.verdicts.set(dir, v);
    return v;
  }
}
