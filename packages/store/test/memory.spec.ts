import { createMemoryStore } from '../src/index.js'
import { chunkStoreCompliance } from './compliance.js'

chunkStoreCompliance('memory', async () => ({ store: createMemoryStore() }))
