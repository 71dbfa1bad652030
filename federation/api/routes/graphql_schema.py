"""The schema served at ``/graphql/v2``, in SDL.

The Oz client's ``IssueTaskIdentityToken`` operation is generated from Oz's published
schema, and a server validates it against its own: every type, field, argument, enum
value and input field the operation can name is declared here with Oz's exact name,
type and nullability (the root types' names included). A test holds it against a
checked-in list of those promises.

Our own additions: ``RootQuery.serverVersion`` (GraphQL needs a query root with a field),
``GitHubRepo``'s fields (Oz's are not part of the operation) and ``PlatformError``, the
refusal type that carries the Oz error code of a platform error. The Oz client reads an
error type it does not know as ``{__typename, message}``.
"""

from __future__ import annotations

from typing import Final

SDL: Final = '''
schema { query: RootQuery, mutation: RootMutation }

"An RFC 3339 date-time in UTC, such as 2026-09-22T10:00:00Z."
scalar Time

type RootQuery {
  "The version of this server."
  serverVersion: String!
}

type RootMutation {
  """
  A token bound to the run named by the X-Warp-Cloud-Agent-ID header. A refusal is a
  UserFacingError.
  """
  issueTaskIdentityToken(
    input: IssueTaskIdentityTokenInput!
    requestContext: RequestContext!
  ): IssueTaskIdentityTokenResult!
}

input IssueTaskIdentityTokenInput {
  audience: String!
  """
  Non-null, as in Oz. It may still be omitted: its default is the server's default
  duration. Above the server's maximum it is capped.
  """
  requestedDurationSeconds: Int!
  subjectTemplate: [String!]
}

input RequestContext {
  clientContext: ClientContext!
  osContext: OSContext!
}

input ClientContext {
  version: String
}

input OSContext {
  category: String
  linuxKernelVersion: String
  name: String
  version: String
}

interface Response {
  responseContext: ResponseContext!
}

type ResponseContext {
  serverVersion: String
}

type IssueTaskIdentityTokenOutput implements Response {
  expiresAt: Time!
  issuer: String!
  responseContext: ResponseContext!
  token: String!
}

union IssueTaskIdentityTokenResult = IssueTaskIdentityTokenOutput | UserFacingError

type UserFacingError implements Response {
  error: UserFacingErrorInterface!
  responseContext: ResponseContext!
}

interface UserFacingErrorInterface {
  message: String!
}

type AccountDelinquencyError implements UserFacingErrorInterface {
  message: String!
}

type BudgetExceededError implements UserFacingErrorInterface {
  message: String!
}

type GenericStringObjectUniqueKeyConflict implements UserFacingErrorInterface {
  message: String!
}

type GithubRepositoryNotFoundError implements UserFacingErrorInterface {
  message: String!
  repositories: [GitHubRepo!]!
}

type InvalidAttachmentError implements UserFacingErrorInterface {
  message: String!
}

"What this server answers for an invalid request, as Oz does."
type InvalidInputError implements UserFacingErrorInterface {
  message: String!
}

type InvalidSecretError implements UserFacingErrorInterface {
  message: String!
}

type InvalidUserCodeError implements UserFacingErrorInterface {
  message: String!
}

type MintCustomTokenForNonAnonymousUserError implements UserFacingErrorInterface {
  message: String!
}

type PaymentMethodDeclinedError implements UserFacingErrorInterface {
  message: String!
}

type PersonalObjectsLimitExceeded implements UserFacingErrorInterface {
  limit: Int!
  message: String!
  objectType: ObjectType!
}

type SeatCapExceededError implements UserFacingErrorInterface {
  message: String!
}

type SharedObjectsLimitExceeded implements UserFacingErrorInterface {
  limit: Int!
  message: String!
  objectType: ObjectType!
}

type TOSViolationError implements UserFacingErrorInterface {
  message: String!
}

enum ObjectType {
  AIConversation
  Folder
  GenericStringObject
  Notebook
  Workflow
}

"Minimal, and ours: Oz's fields for it are not part of the operation."
type GitHubRepo {
  owner: String!
  repo: String!
}

enum PlatformErrorCode {
  INVALID_REQUEST
  AUTHENTICATION_REQUIRED
  NOT_AUTHORIZED
  RESOURCE_NOT_FOUND
  CONFLICT
  OPERATION_NOT_SUPPORTED
  RESOURCE_UNAVAILABLE
  INTERNAL_ERROR
}

type PlatformErrorInfo {
  code: PlatformErrorCode!
  retryable: Boolean!
}

"Ours: a refusal other than an invalid request, with its Oz error code."
type PlatformError implements UserFacingErrorInterface {
  "title (detail), as in the problem answers of the REST API."
  message: String!
  detail: String
  info: PlatformErrorInfo!
}
'''
