/** Errors of the NAT lab, each with a stable `code`. */

/** The lab cannot run here (not root, a tool missing); tests skip with its message. */
export class LabUnavailableError extends Error {
  readonly code = 'ERR_LAB_UNAVAILABLE'
  constructor (message: string) {
    super(message)
    this.name = 'LabUnavailableError'
  }
}

/** A lab command (ip, nft, tc, a daemon or CLI call) failed; the message carries its stderr. */
export class LabCommandError extends Error {
  readonly code = 'ERR_LAB_COMMAND'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'LabCommandError'
  }
}

/** Bad input to the lab builder (a name, a preset, a host of another lab); nothing was changed. */
export class LabConfigError extends Error {
  readonly code = 'ERR_LAB_CONFIG'
  constructor (message: string) {
    super(message)
    this.name = 'LabConfigError'
  }
}
