import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'

/** The CIDs a block links to: dag-pb links, CIDs anywhere in a dag-cbor value, none for raw or unknown codecs. */
export function blockLinks (cid: CID, bytes: Uint8Array): CID[] {
  if (cid.code === dagPb.code) {
    return dagPb.decode(bytes).Links.map(link => link.Hash)
  }
  if (cid.code === dagCbor.code) {
    const links: CID[] = []
    const stack: unknown[] = [dagCbor.decode(bytes)]
    while (stack.length > 0) {
      const value = stack.pop()
      const link = CID.asCID(value)
      if (link != null) {
        links.push(link)
      } else if (Array.isArray(value)) {
        stack.push(...value)
      } else if (value != null && typeof value === 'object' && !(value instanceof Uint8Array)) {
        stack.push(...Object.values(value))
      }
    }
    return links
  }
  return []
}
