import type { FsReadHandle, FsSpace, FsStat, FsWriteHandle, ShareWriteFs } from './fs.js'

interface NodeBase { ino: number, mode: number, mtimeMs: number }
interface FileNode extends NodeBase { type: 'file', data: Uint8Array }
interface DirNode extends NodeBase { type: 'dir', children: Map<string, MemoryNode> }
interface LinkNode extends NodeBase { type: 'symlink', target: string }
interface OtherNode extends NodeBase { type: 'other' }
type MemoryNode = FileNode | DirNode | LinkNode | OtherNode

interface Located { parent: DirNode, name: string, node: MemoryNode | undefined }

const MAX_SYMLINK_HOPS = 40

function fsError (code: string, syscall: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, path })
}

function split (path: string): string[] {
  return path.split('/').filter(p => p !== '')
}

export interface MemoryFsInit {
  /** Bytes the filesystem holds (files only); writes beyond fail with ENOSPC. Default 1 GiB. */
  capacity?: number
  /** mtime of new or written files; default a clock starting at 2024-01-01 that ticks 1 s a change. */
  now?: () => number
}

/**
 * An in-memory `ShareFs` for unit tests: POSIX semantics for what sync uses
 * (symlinks followed in parents and never at the last component by lstat,
 * exclusive create, rename over files, ENOSPC past `capacity`). Every
 * mutating call is appended to `ops`, so tests can check the order of
 * write, fsync, rename and directory fsync.
 */
export class MemoryFs implements ShareWriteFs {
  readonly ops: string[] = []
  capacity: number
  #used = 0
  #ino = 1
  readonly #root: DirNode
  readonly #now: () => number
  /** Resolved directories by path, so deep trees stay linear; cleared on every change to the tree. */
  readonly #dirs = new Map<string, DirNode>()

  constructor (init: MemoryFsInit = {}) {
    this.capacity = init.capacity ?? 1024 ** 3
    let t = Date.UTC(2024, 0, 1)
    this.#now = init.now ?? (() => (t += 1000))
    this.#root = { type: 'dir', children: new Map(), ino: this.#ino++, mode: 0o755, mtimeMs: this.#now() }
  }

  #locate (path: string, followLast: boolean, syscall: string): Located {
    const slash = path.lastIndexOf('/')
    const last = path.slice(slash + 1)
    const cacheable = slash > 0 && last !== '' && last !== '.' && last !== '..'
    let found: Located | undefined
    const cached = cacheable ? this.#cachedDir(path.slice(0, slash)) : undefined
    if (cached != null) {
      found = { parent: cached, name: last, node: cached.children.get(last) }
    } else {
      found = this.#walk(path, false, syscall)
      if (cacheable) this.#dirs.set(path.slice(0, slash), found.parent)
    }
    if (followLast && found.node?.type === 'symlink') return this.#walk(path, true, syscall)
    return found
  }

  /** A directory from the cache, or one step below a cached one. */
  #cachedDir (dir: string): DirNode | undefined {
    const hit = this.#dirs.get(dir)
    if (hit != null) return hit
    const slash = dir.lastIndexOf('/')
    if (slash <= 0) return undefined
    const node = this.#dirs.get(dir.slice(0, slash))?.children.get(dir.slice(slash + 1))
    if (node?.type !== 'dir') return undefined
    this.#dirs.set(dir, node)
    return node
  }

  #walk (path: string, followLast: boolean, syscall: string): Located {
    let parts = split(path)
    let hops = 0
    restart: for (;;) {
      const stack: DirNode[] = [this.#root]
      const names: string[] = []
      if (parts.length === 0) return { parent: this.#root, name: '', node: this.#root }
      for (let i = 0; i < parts.length; i++) {
        const name = parts[i]
        const last = i === parts.length - 1
        const dir = stack[stack.length - 1]
        if (name === '.' || name === '..') {
          if (name === '..' && stack.length > 1) { stack.pop(); names.pop() }
          if (last) return { parent: stack[stack.length - 1], name: '', node: stack[stack.length - 1] }
          continue
        }
        const node = dir.children.get(name)
        if (node?.type === 'symlink' && (!last || followLast)) {
          if (++hops > MAX_SYMLINK_HOPS) throw fsError('ELOOP', syscall, path)
          const base = node.target.startsWith('/') ? [] : names
          parts = [...base, ...split(node.target), ...parts.slice(i + 1)]
          continue restart
        }
        if (last) return { parent: dir, name, node }
        if (node == null) throw fsError('ENOENT', syscall, path)
        if (node.type !== 'dir') throw fsError('ENOTDIR', syscall, path)
        stack.push(node)
        names.push(name)
      }
    }
  }

  #existing (path: string, followLast: boolean, syscall: string): MemoryNode {
    const { node } = this.#locate(path, followLast, syscall)
    if (node == null) throw fsError('ENOENT', syscall, path)
    return node
  }

  #dir (path: string, syscall: string): DirNode {
    const node = this.#existing(path, true, syscall)
    if (node.type !== 'dir') throw fsError('ENOTDIR', syscall, path)
    return node
  }

  #add (path: string, syscall: string, make: () => MemoryNode): MemoryNode {
    const { parent, name, node } = this.#locate(path, false, syscall)
    if (node != null || name === '') throw fsError('EEXIST', syscall, path)
    const created = make()
    this.#dirs.clear()
    parent.children.set(name, created)
    parent.mtimeMs = this.#now()
    this.ops.push(`${syscall} ${path}`)
    return created
  }

  #release (node: MemoryNode): void {
    if (node.type === 'file') this.#used -= node.data.byteLength
  }

  async lstat (path: string): Promise<FsStat> {
    const node = this.#existing(path, false, 'lstat')
    const size = node.type === 'file' ? node.data.byteLength : node.type === 'symlink' ? node.target.length : 0
    return { type: node.type, size, mtimeMs: node.mtimeMs, mode: node.mode, ino: node.ino }
  }

  async readdir (path: string): Promise<string[]> {
    return [...this.#dir(path, 'readdir').children.keys()]
  }

  async openRead (path: string): Promise<FsReadHandle> {
    const node = this.#existing(path, false, 'open')
    if (node.type === 'symlink') throw fsError('ELOOP', 'open', path)
    if (node.type !== 'file') throw fsError('EISDIR', 'open', path)
    return {
      read: async (buf, position) => {
        const bytes = node.data.subarray(position, position + buf.byteLength)
        buf.set(bytes)
        return bytes.byteLength
      },
      close: async () => {}
    }
  }

  async createExclusive (path: string, mode: number): Promise<FsWriteHandle> {
    const node = this.#add(path, 'create', () => ({ type: 'file', data: new Uint8Array(0), ino: this.#ino++, mode, mtimeMs: this.#now() })) as FileNode
    return this.#writeHandle(node, path)
  }

  async openWrite (path: string): Promise<FsWriteHandle> {
    const node = this.#existing(path, false, 'open')
    if (node.type === 'symlink') throw fsError('ELOOP', 'open', path)
    if (node.type !== 'file') throw fsError('EISDIR', 'open', path)
    this.ops.push(`open ${path}`)
    return this.#writeHandle(node, path)
  }

  async copyFile (from: string, to: string): Promise<void> {
    const src = this.#existing(from, true, 'copyfile')
    if (src.type !== 'file') throw fsError('EISDIR', 'copyfile', from)
    if (src.data.byteLength > this.capacity - this.#used) throw fsError('ENOSPC', 'copyfile', to)
    this.#add(to, 'copyfile', () => ({ type: 'file', data: src.data.slice(), ino: this.#ino++, mode: src.mode, mtimeMs: this.#now() }))
    this.#used += src.data.byteLength
    this.ops[this.ops.length - 1] = `copyfile ${from} ${to}`
  }

  #resize (node: FileNode, size: number, path: string): void {
    if (size > node.data.byteLength && size - node.data.byteLength > this.capacity - this.#used) throw fsError('ENOSPC', 'write', path)
    const resized = new Uint8Array(size)
    resized.set(node.data.subarray(0, size))
    this.#used += size - node.data.byteLength
    node.data = resized
  }

  #writeHandle (node: FileNode, path: string): FsWriteHandle {
    return {
      write: async (bytes, position) => {
        const end = position + bytes.byteLength
        if (end > node.data.byteLength) this.#resize(node, end, path)
        node.data.set(bytes, position)
        node.mtimeMs = this.#now()
        this.ops.push(`write ${path}`)
      },
      truncate: async (size) => {
        this.#resize(node, size, path)
        node.mtimeMs = this.#now()
        this.ops.push(`truncate ${path}`)
      },
      chmod: async (m) => { node.mode = m & 0o7777 },
      utimes: async (mtimeMs) => { node.mtimeMs = mtimeMs },
      sync: async () => { this.ops.push(`sync ${path}`) },
      close: async () => {}
    }
  }

  async rename (from: string, to: string): Promise<void> {
    const src = this.#locate(from, false, 'rename')
    if (src.node == null) throw fsError('ENOENT', 'rename', from)
    const dst = this.#locate(to, false, 'rename')
    if (dst.node === src.node) return
    if (dst.node != null) {
      if (dst.node.type === 'dir' && src.node.type !== 'dir') throw fsError('EISDIR', 'rename', to)
      if (dst.node.type === 'dir' && dst.node.children.size > 0) throw fsError('ENOTEMPTY', 'rename', to)
      if (dst.node.type !== 'dir' && src.node.type === 'dir') throw fsError('ENOTDIR', 'rename', to)
      this.#release(dst.node)
    }
    this.#dirs.clear()
    src.parent.children.delete(src.name)
    dst.parent.children.set(dst.name, src.node)
    this.ops.push(`rename ${from} ${to}`)
  }

  async fsyncDir (path: string): Promise<void> {
    this.#dir(path, 'fsync')
    this.ops.push(`fsyncDir ${path}`)
  }

  async unlink (path: string): Promise<void> {
    const { parent, name, node } = this.#locate(path, false, 'unlink')
    if (node == null) throw fsError('ENOENT', 'unlink', path)
    if (node.type === 'dir') throw fsError('EISDIR', 'unlink', path)
    this.#dirs.clear()
    parent.children.delete(name)
    this.#release(node)
    this.ops.push(`unlink ${path}`)
  }

  async rmdir (path: string): Promise<void> {
    const { parent, name, node } = this.#locate(path, false, 'rmdir')
    if (node == null) throw fsError('ENOENT', 'rmdir', path)
    if (node.type !== 'dir') throw fsError('ENOTDIR', 'rmdir', path)
    if (node.children.size > 0) throw fsError('ENOTEMPTY', 'rmdir', path)
    this.#dirs.clear()
    parent.children.delete(name)
    this.ops.push(`rmdir ${path}`)
  }

  async mkdir (path: string, mode: number): Promise<void> {
    this.#add(path, 'mkdir', () => ({ type: 'dir', children: new Map(), ino: this.#ino++, mode, mtimeMs: this.#now() }))
  }

  async symlink (target: string, path: string): Promise<void> {
    this.#add(path, 'symlink', () => ({ type: 'symlink', target, ino: this.#ino++, mode: 0o777, mtimeMs: this.#now() }))
  }

  async readlink (path: string): Promise<string> {
    const node = this.#existing(path, false, 'readlink')
    if (node.type !== 'symlink') throw fsError('EINVAL', 'readlink', path)
    return node.target
  }

  async statfs (path: string): Promise<FsSpace> {
    this.#existing(path, true, 'statfs')
    return { totalBytes: this.capacity, freeBytes: Math.max(0, this.capacity - this.#used) }
  }

  // test helpers, not part of ShareFs

  /** Creates or replaces a file (parents created), bypassing `ops`. */
  writeFile (path: string, data: Uint8Array | string, init: { mode?: number, mtimeMs?: number } = {}): void {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
    this.#dirs.clear()
    const parts = split(path)
    let dir = this.#root
    for (const part of parts.slice(0, -1)) {
      let next = dir.children.get(part)
      if (next == null) {
        next = { type: 'dir', children: new Map(), ino: this.#ino++, mode: 0o755, mtimeMs: this.#now() }
        dir.children.set(part, next)
      }
      if (next.type !== 'dir') throw fsError('ENOTDIR', 'writeFile', path)
      dir = next
    }
    const name = parts[parts.length - 1]
    const old = dir.children.get(name)
    if (old != null) this.#release(old)
    const ino = old?.type === 'file' ? old.ino : this.#ino++
    dir.children.set(name, { type: 'file', data: bytes.slice(), ino, mode: init.mode ?? 0o644, mtimeMs: init.mtimeMs ?? this.#now() })
    this.#used += bytes.byteLength
  }

  /** Adds a socket-like entry that is neither file, directory nor link. */
  addOther (path: string): void {
    this.#add(path, 'mknod', () => ({ type: 'other', ino: this.#ino++, mode: 0o644, mtimeMs: this.#now() }))
  }

  readFile (path: string): Uint8Array {
    const node = this.#existing(path, true, 'readFile')
    if (node.type !== 'file') throw fsError('EISDIR', 'readFile', path)
    return node.data.slice()
  }

  exists (path: string): boolean {
    try {
      return this.#locate(path, false, 'exists').node != null
    } catch {
      return false
    }
  }

  setMtime (path: string, mtimeMs: number): void {
    this.#existing(path, false, 'utimes').mtimeMs = mtimeMs
  }
}
