"""Every GraphQL document the admin client sends, as module constants.

Each one is validated against ``schema.graphql`` by ``tests/tui/test_operations.py``;
``ALL`` lists them so the test cannot miss a new one.
"""

from __future__ import annotations

ACCOUNT_FIELDS = """
fragment AccountFields on Account {
  id
  name
  licenseLimit
  licensesUsed
  licensesAvailable
  pendingCount
  manualReview
  retentionDays
  autoApprove
  autoApproveDomains
  queueTargetHours
}
"""

USER_FIELDS = """
fragment UserFields on User {
  id
  displayName
  status
  firstSeenAt
  lastSeenAt
  licensedAt
  agents { id deviceName domain logonName }
  pending {
    reason
    enteredAt
    retainedEventCount
    retainedActiveSeconds
    oldestRetainedAt
    dataExpiresAt
    dueAt
    overdue
  }
  suggestions(first: 1) {
    kind score reasons
    user { id displayName }
    agent { id deviceName domain logonName user { id displayName } }
  }
}
"""

SUGGESTIONS = """
query Suggestions($id: ID!) {
  user(id: $id) {
    id
    suggestions(first: 10) {
      kind score reasons
      user { id displayName }
      agent { id deviceName domain logonName user { id displayName } }
    }
  }
}
"""

SEAT_PLAN_FIELDS = """
fragment SeatPlanFields on SeatPlan {
  approve { id displayName }
  moveToPending { id displayName }
  licenseLimit
  licensesUsedBefore
  licensesUsedAfter
  queueVersion
  errors { code message field }
}
"""

# The detail pane's read: one user, never a list (the pane follows the cursor).
USER_DETAIL = """
query UserDetail($id: ID!, $days: Int!) {
  user(id: $id) {
    id
    displayName
    status
    firstSeenAt
    licensedAt
    lastActivityAt
    agents { id deviceName domain logonName lastSeenAt }
    pending {
      reason
      enteredAt
      retainedEventCount
      retainedActiveSeconds
      oldestRetainedAt
      dataExpiresAt
      dueAt
      overdue
    }
    suggestions(first: 5) {
      kind score reasons
      user { id displayName status agents { id deviceName domain logonName } }
      agent { id deviceName domain logonName user { id displayName } }
    }
    activity(days: $days) {
      days
      activeSeconds
      productiveSeconds
      unproductiveSeconds
      topApps { app activeSeconds }
      daily { date activeSeconds productiveSeconds unproductiveSeconds }
    }
  }
}
"""

PREVIEW_APPROVAL = (
    """
query PreviewApproval($userIds: [ID!]!) {
  previewApproval(userIds: $userIds) { ...SeatPlanFields }
}
"""
    + SEAT_PLAN_FIELDS
)

PREVIEW_ACCOUNT_SETTINGS = (
    """
query PreviewAccountSettings($input: UpdateAccountSettingsInput!) {
  previewAccountSettings(input: $input) { ...SeatPlanFields }
}
"""
    + SEAT_PLAN_FIELDS
)

BOOTSTRAP = (
    """
query Bootstrap {
  me { id name email role }
  account { ...AccountFields }
}
"""
    + ACCOUNT_FIELDS
)

ACCOUNT = (
    """
query Account {
  account { ...AccountFields }
}
"""
    + ACCOUNT_FIELDS
)

PENDING_USERS = (
    """
query PendingUsers($first: Int!, $after: String, $search: String, $reason: PendingReason) {
  account { ...AccountFields }
  pendingUsers(first: $first, after: $after, search: $search, reason: $reason, orderBy: ENTERED_ASC) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { ...UserFields } }
  }
}
"""
    + ACCOUNT_FIELDS
    + USER_FIELDS
)

USERS = (
    """
query Users($first: Int!, $after: String, $search: String, $status: UserStatus) {
  users(first: $first, after: $after, search: $search, status: $status) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { ...UserFields } }
  }
}
"""
    + USER_FIELDS
)

AGENTS = """
query Agents($first: Int!, $after: String, $search: String) {
  agents(first: $first, after: $after, search: $search) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id
        deviceName
        domain
        logonName
        lastSeenAt
        user { id displayName status }
      }
    }
  }
}
"""

AUDIT_LOG = """
query AuditLog($first: Int!, $after: String) {
  auditLog(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id
        at
        actor { id name email }
        action
        userId
        userDisplayName
        detail
        undoableUntil
      }
    }
  }
}
"""

UNDO_ACTIONS = (
    """
mutation UndoActions($auditEntryIds: [ID!]!) {
  undoActions(input: {auditEntryIds: $auditEntryIds}) {
    users { id displayName status }
    account { ...AccountFields }
    errors { code message field }
  }
}
"""
    + ACCOUNT_FIELDS
)

QUEUE_METRICS = """
query QueueMetrics($days: Int!) {
  queueMetrics(days: $days) {
    pendingCount
    oldestPendingSince
    resolvedCount
    averageResolutionSeconds
    medianResolutionSeconds
    p90ResolutionSeconds
    resolvedByAction { action count }
    overdueCount
    withinTargetRatio
  }
}
"""

# The Reclaim tab: licensed users idle longest first, with when each was last active.
INACTIVE_USERS = (
    """
query InactiveUsers($days: Int!, $first: Int!, $after: String) {
  inactiveUsers(days: $days, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { ...UserFields lastActivityAt } }
  }
}
"""
    + USER_FIELDS
)

APPROVE_PENDING_USERS = (
    """
mutation ApprovePendingUsers($userIds: [ID!]!, $expectedQueueVersion: String) {
  approvePendingUsers(input: {userIds: $userIds, expectedQueueVersion: $expectedQueueVersion}) {
    approved { id displayName }
    account { ...AccountFields }
    errors { code message field }
  }
}
"""
    + ACCOUNT_FIELDS
)

ASSIGN_PENDING_USER = (
    """
mutation AssignPendingUser($pendingUserId: ID!, $targetUserId: ID!) {
  assignPendingUser(input: {pendingUserId: $pendingUserId, targetUserId: $targetUserId}) {
    user { id displayName }
    account { ...AccountFields }
    errors { code message field }
  }
}
"""
    + ACCOUNT_FIELDS
)

MERGE_PENDING_USER = (
    """
mutation MergePendingUser($pendingUserId: ID!, $targetAgentId: ID!) {
  mergePendingUser(input: {pendingUserId: $pendingUserId, targetAgentId: $targetAgentId}) {
    agent { id deviceName domain logonName user { id displayName } }
    account { ...AccountFields }
    errors { code message field }
  }
}
"""
    + ACCOUNT_FIELDS
)

REMOVE_USERS = (
    """
mutation RemoveUsers($userIds: [ID!]!, $doNotTrack: Boolean!) {
  removeUsers(input: {userIds: $userIds, doNotTrack: $doNotTrack}) {
    removedUserIds
    account { ...AccountFields }
    errors { code message field }
  }
}
"""
    + ACCOUNT_FIELDS
)

UPDATE_ACCOUNT_SETTINGS = (
    """
mutation UpdateAccountSettings($input: UpdateAccountSettingsInput!) {
  updateAccountSettings(input: $input) {
    account { ...AccountFields }
    errors { code message field }
  }
}
"""
    + ACCOUNT_FIELDS
)

RELEASE_LICENSES = (
    """
mutation ReleaseLicenses($userIds: [ID!]!) {
  releaseLicenses(input: {userIds: $userIds}) {
    released { id displayName }
    account { ...AccountFields }
    errors { code message field }
  }
}
"""
    + ACCOUNT_FIELDS
)

SWAP_LICENSE = (
    """
mutation SwapLicense($releaseUserId: ID!, $approveUserId: ID!) {
  swapLicense(input: {releaseUserId: $releaseUserId, approveUserId: $approveUserId}) {
    released { id displayName }
    approved { id displayName }
    account { ...AccountFields }
    errors { code message field }
  }
}
"""
    + ACCOUNT_FIELDS
)

PENDING_QUEUE_CHANGED = (
    """
subscription PendingQueueChanged {
  pendingQueueChanged {
    action
    userId
    at
    actor { id name }
    account { ...AccountFields }
    user { ...UserFields }
    target { ...UserFields }
  }
}
"""
    + ACCOUNT_FIELDS
    + USER_FIELDS
)

ALL: dict[str, str] = {
    "Bootstrap": BOOTSTRAP,
    "Account": ACCOUNT,
    "PendingUsers": PENDING_USERS,
    "Users": USERS,
    "Agents": AGENTS,
    "AuditLog": AUDIT_LOG,
    "QueueMetrics": QUEUE_METRICS,
    "ApprovePendingUsers": APPROVE_PENDING_USERS,
    "AssignPendingUser": ASSIGN_PENDING_USER,
    "MergePendingUser": MERGE_PENDING_USER,
    "RemoveUsers": REMOVE_USERS,
    "UpdateAccountSettings": UPDATE_ACCOUNT_SETTINGS,
    "PendingQueueChanged": PENDING_QUEUE_CHANGED,
    "Suggestions": SUGGESTIONS,
    "UserDetail": USER_DETAIL,
    "PreviewApproval": PREVIEW_APPROVAL,
    "PreviewAccountSettings": PREVIEW_ACCOUNT_SETTINGS,
    "InactiveUsers": INACTIVE_USERS,
    "ReleaseLicenses": RELEASE_LICENSES,
    "SwapLicense": SWAP_LICENSE,
    "UndoActions": UNDO_ACTIONS,
}
