import { HomecloudError } from '@homecloud/interface'

export { InvalidParametersError, NotFoundError, PermissionDeniedError, LimitExceededError, AbortError } from '@homecloud/interface'

/** An invite code does not parse: wrong version, bad checksum, truncated, too long. */
export class InvalidInviteError extends HomecloudError {
  static readonly code = 'ERR_INVITE_INVALID'
  constructor (message: string, options?: ErrorOptions) {
    super(message, InvalidInviteError.code, options)
    this.name = 'InvalidInviteError'
  }
}

/** The invite's expiry has passed. */
export class InviteExpiredError extends HomecloudError {
  static readonly code = 'ERR_INVITE_EXPIRED'
  constructor (message = 'the invite has expired', options?: ErrorOptions) {
    super(message, InviteExpiredError.code, options)
    this.name = 'InviteExpiredError'
  }
}

/** Every use of the invite has been spent. */
export class InviteUsedError extends HomecloudError {
  static readonly code = 'ERR_INVITE_USED'
  constructor (message = 'the invite has already been used', options?: ErrorOptions) {
    super(message, InviteUsedError.code, options)
    this.name = 'InviteUsedError'
  }
}

/** No member recorded this invite: a forged code, or one for a swarm the member is not in. */
export class UnknownInviteError extends HomecloudError {
  static readonly code = 'ERR_INVITE_UNKNOWN'
  constructor (message = 'the invite is not known to this member', options?: ErrorOptions) {
    super(message, UnknownInviteError.code, options)
    this.name = 'UnknownInviteError'
  }
}

/** The code names a swarm the contacted member does not belong to. */
export class WrongSwarmError extends HomecloudError {
  static readonly code = 'ERR_WRONG_SWARM'
  constructor (message = 'the member contacted does not belong to the swarm of this invite', options?: ErrorOptions) {
    super(message, WrongSwarmError.code, options)
    this.name = 'WrongSwarmError'
  }
}

/** The join could not complete (no member reachable, protocol error). */
export class JoinFailedError extends HomecloudError {
  static readonly code = 'ERR_JOIN_FAILED'
  constructor (message: string, options?: ErrorOptions) {
    super(message, JoinFailedError.code, options)
    this.name = 'JoinFailedError'
  }
}

/** Why a roster entry was rejected; counted per reason. */
export type ForgedEntryReason = 'malformed' | 'bad-signature' | 'wrong-swarm' | 'not-a-member' | 'missing-parents' | 'duplicate-genesis' | 'too-many-entries'

/** A roster entry was malformed, badly signed, or signed by a device that was not a member. */
export class ForgedEntryError extends HomecloudError {
  static readonly code = 'ERR_FORGED_ENTRY'
  readonly reason: ForgedEntryReason
  constructor (message: string, reason: ForgedEntryReason, options?: ErrorOptions) {
    super(message, ForgedEntryError.code, options)
    this.name = 'ForgedEntryError'
    this.reason = reason
  }
}

/** The local device is not (or no longer) a member of the swarm, or the swarm is unknown here. */
export class NotAMemberError extends HomecloudError {
  static readonly code = 'ERR_NOT_A_MEMBER'
  constructor (message: string, options?: ErrorOptions) {
    super(message, NotAMemberError.code, options)
    this.name = 'NotAMemberError'
  }
}

/** A peer broke a wire protocol: oversize or malformed message, unexpected end. */
export class ProtocolError extends HomecloudError {
  static readonly code = 'ERR_PROTOCOL'
  constructor (message: string, options?: ErrorOptions) {
    super(message, ProtocolError.code, options)
    this.name = 'ProtocolError'
  }
}

/** A swarm with this name already exists on this device. */
export class SwarmExistsError extends HomecloudError {
  static readonly code = 'ERR_SWARM_EXISTS'
  constructor (message: string, options?: ErrorOptions) {
    super(message, SwarmExistsError.code, options)
    this.name = 'SwarmExistsError'
  }
}
