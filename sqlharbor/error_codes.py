"""Every stable error code sqlharbor reports, with the remediation shown when the raiser
gives none: the ``ErrorCode`` enum, grouped by concern (``# -- title --`` comments, which
``docs/error-codes.md`` mirrors).  Codes never change once released; Azure Backup's name
where one exists.  Imported through ``sqlharbor.errors``, whose exceptions carry them.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Stable codes (``str``: the value is the wire format), each with the remediation
    shown when the raiser gives none; ``docs/error-codes.md`` lists them."""

    _remediation: str

    def __new__(cls, value: str, remediation: str) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member._remediation = remediation
        return member

    @property
    def remediation(self) -> str:
        return self._remediation

    # -- jobs and the operator-agent contract ---------------------------------------------
    AGENT_LOST = "AgentLost", "Check that sqlharbor-agent runs on the VM."
    AGENT_RESTARTED = "AgentRestarted", "None needed; check the agent's logs if this repeats."
    AGENT_INTERNAL_ERROR = (
        "AgentInternalError",
        "Check the agent's log for the stack trace and report it.",
    )
    JOB_FAILED = "JobFailed", "See the job's status and the agent's log."
    INTERNAL_ERROR = "InternalError", "Check the agent and operator logs."
    TEMPORARY_FAILURE = "TemporaryFailure", "None: retried automatically."
    UNKNOWN = "Unknown", "The job failed without saying why; check the agent's log."

    # -- Kubernetes API (the server's own reasons) ----------------------------------------
    NOT_FOUND = "NotFound", "Check the name and namespace."
    CONFLICT = "Conflict", "None: another writer changed the object first; read it again."
    FORBIDDEN = "Forbidden", "Check the service account's RBAC (config/rbac/, or agent enroll)."
    INVALID = "Invalid", "The API server refused the object; fix the field its message names."
    SECRET_KEY_MISSING = "SecretKeyMissing", "Add the key to the Secret, or fix the reference."

    # -- references the operator resolves (ProtectedDatabase, BackupVault, BackupPolicy) --
    POLICY_NOT_FOUND = "PolicyNotFound", "Create the BackupPolicy, or fix spec.policyRef."
    INVALID_POLICY = "InvalidPolicy", "Fix the cron fields or the time zone the message names."
    VAULT_NOT_SET = "VaultNotSet", "Set spec.vaultRef here or in the BackupPolicy."
    VAULT_NOT_FOUND = "VaultNotFound", "Create the BackupVault, or fix spec.vaultRef."
    VAULT_UNAVAILABLE = "VaultUnavailable", "Fix what the BackupVault's status message names."
    INVALID_SECRET = "InvalidSecret", "Fix the vault's Secrets: storage credentials, base64 key."
    INSTANCE_NOT_FOUND = "InstanceNotFound", "Create the SqlInstance, or fix spec.instanceRef."
    INSTANCE_NOT_SERVED = "InstanceNotServed", "Start sqlharbor-agent on the instance's host."
    AGENT_VERSION_UNSUPPORTED = (
        "AgentVersionUnsupported",
        "Install the operator's version of the agent bundle (docs/agent-install.md).",
    )
    ENGINE_UNAVAILABLE = "EngineUnavailable", "The agent cannot reach its engine; see the message."

    # -- SQL Server (Azure Backup's codes where one exists) -------------------------------
    SQL_NO_SYSADMIN_MEMBERSHIP = (
        "UserErrorSQLNoSysadminMembership",
        "Grant the agent's login sysadmin (sqlharbor-agent grant-permissions), then rediscover.",
    )
    SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE = (
        "UserErrorSQLPODoesNotSupportBackupType",
        "Change the policy or the recovery model (no log backups under SIMPLE, master: full).",
    )
    SQL_PO_DOES_NOT_EXIST = "UserErrorSQLPODoesNotExist", "Restore it, or stop protecting it."
    SQL_LSN_VALIDATION_FAILURE = (
        "UserErrorSQLLSNValidationFailure",
        "Another tool took a backup of this database; stop it. The next backup becomes a full.",
    )
    OPENING_SQL_CONNECTION = "UserErrorOpeningSQLConnection", "Check the instance, network, login."
    PARENT_FULL_BACKUP_MISSING = "UserErrorParentFullBackupMissing", "Take a full backup first."
    TRANSACTION_LOG_FULL = (
        "UserErrorBackupFailedAsTransactionLogIsFull",
        "Free log space (grow the log file), then take a log backup.",
    )
    TARGET_EXISTS = (
        "UserErrorCannotRestoreExistingDBWithoutForceOverwrite",
        "Restore under a new name, or allow overwriting the target.",
    )
    LOG_BACKUP_CONTAINS_BULK_LOGGED_CHANGES = (
        "UserErrorRestoreNotPossibleBecauseLogBackupContainsBulkLoggedChanges",
        "Pick a point in time outside the bulk-logged log backup.",
    )
    DATABASE_IN_USE = "UserErrorDatabaseInUse", "Close the target database's connections and retry."
    DATABASE_NOT_ONLINE = "UserErrorDatabaseNotOnline", "Bring the database online, then retry."
    DATABASE_ALREADY_EXISTS = "UserErrorDatabaseAlreadyExists", "Use a new name, or overwrite."
    DATABASE_READ_ONLY = "UserErrorDatabaseReadOnly", "Take full or copy-only full backups only."
    INVALID_NAME = "UserErrorInvalidName", "Use a database or file name without NUL characters."
    SQL_DEADLOCK = "SQLDeadlock", "Retried automatically."
    SQL_SERVER_ERROR = "SQLServerError", "See the SQL Server error log."
    SQL_SERVER_BACKUP_HISTORY_MISSING = "SQLServerBackupHistoryMissing", "Check msdb.dbo.backupset."
    SQL_SERVER_STATEMENT_TIMEOUT = "SQLServerStatementTimeout", "See the SQL Server error log."
    SQL_SERVER_VIRTUAL_DEVICE_ERROR = (
        "SQLServerVirtualDeviceError",
        "Check that the agent runs as the mssql user or in its group (Linux), that its login "
        "is sysadmin, and the SQL Server error log.",
    )
    SINK_FAILURE = "SinkFailure", "The vault accepted no bytes; check the vault and retry."
    BACKUP_SINK_FAILED = "BackupSinkFailed", "The vault accepted no bytes; check the vault."
    BACKUP_STREAM_INVALID = (
        "UserErrorBackupStreamInvalid",
        "The stored backup is not a valid stream; restore from another recovery point.",
    )
    BACKUP_STREAM_DOES_NOT_MATCH_RECORD = (
        "UserErrorBackupStreamDoesNotMatchRecord",
        "The stored backup is not the one its record names; use another recovery point.",
    )

    # -- restores -------------------------------------------------------------------------
    RESTORE_POINT_OUTSIDE_WINDOW = (
        "UserErrorRestorePointOutsideWindow",
        "Choose a restore point inside the recovery window.",
    )
    RESTORE_POINT_IN_LOG_GAP = "UserErrorRestorePointInLogGap", "Choose a point outside the gap."
    RESTORE_POINT_AMBIGUOUS = (
        "UserErrorRestorePointOnSeveralForks",
        "The database was restored in place, so this point exists on more than one recovery "
        "fork: restore to an LSN with pointInTime.recoveryFork, or to a recovery point id.",
    )
    RECOVERY_POINT_NOT_FOUND = "UserErrorRecoveryPointNotFound", "List points: sqlharbor points."
    NO_RECOVERY_POINTS = "UserErrorNoRecoveryPoints", "Nothing restorable yet: take a full backup."
    INVALID_RESTORE_POINT = "UserErrorInvalidRestorePoint", "Give an RFC 3339 time."
    RESTORE_SOURCE_NOT_FOUND = (
        "UserErrorRestoreSourceNotFound",
        "Check the instance and database identity with: sqlharbor points --vault VAULT "
        "(it lists every database the vault holds).",
    )
    RESTORE_VAULT_NOT_FOUND = "UserErrorVaultNotFound", "Create the BackupVault, or fix the name."
    TARGET_INSTANCE_NOT_FOUND = "UserErrorTargetInstanceNotFound", "Fix the target's instanceRef."
    SOURCE_INSTANCE_NOT_FOUND = (
        "UserErrorSourceInstanceNotFound",
        "Use spec.source.vault with the instance identity (HOST or HOST\\INSTANCE).",
    )
    PROTECTED_DATABASE_NOT_FOUND = (
        "UserErrorProtectedDatabaseNotFound",
        "Fix spec.source.protectedDatabase, or restore from the vault with spec.source.vault.",
    )
    RESTORE_PLAN_MISSING = "RestorePlanMissing", "The operator did not plan it; see its log."
    RESTORE_EMPTY = "UserErrorRestoreEmpty", "A restore needs at least one backup."
    RESTORE_STOP_POINT_OUTSIDE_BACKUPS = (
        "UserErrorRestoreStopPointOutsideBackups",
        "Choose a stop point inside the backups being restored.",
    )
    RESTORE_SEQUENCE_INVALID = (
        "UserErrorRestoreSequenceInvalid",
        "Restore a full, then its differential and logs in LSN order.",
    )
    RESTORE_FILE_LAYOUT_UNKNOWN = (
        "UserErrorRestoreFileLayoutUnknown",
        "The backup does not say where its files go; restore with explicit file locations.",
    )
    RESTORE_FOLDER_NOT_EMPTY = "UserErrorRestoreFolderNotEmpty", "Restore into an empty folder."
    RESTORE_FOLDER = "UserErrorRestoreFolder", "Restore files into a folder the agent can create."
    VAULT_UNREACHABLE = "VaultUnreachable", "None: retried automatically."

    # -- the vault ------------------------------------------------------------------------
    VAULT_OBJECT_NOT_FOUND = (
        "VaultObjectNotFound",
        "The recovery point may have been deleted by retention; pick another one.",
    )
    VAULT_CONTAINER_NOT_FOUND = (
        "VaultContainerNotFound",
        "Check spec.azureBlob.container of the BackupVault; the container is created by "
        "the first backup written to it.",
    )
    VAULT_OBJECT_EXISTS = (
        "VaultObjectExists",
        "Another writer committed this name first; use a new recovery point id.",
    )
    VAULT_ACCESS_DENIED = (
        "VaultAccessDenied",
        "Check the BackupVault's credentials (connection string, SAS or managed identity) "
        "and that they may read, write, list and delete blobs in the container.",
    )
    VAULT_REQUEST_REFUSED = (
        "VaultRequestRefused",
        "The blob service refused the request; check the account, container and API version.",
    )
    VAULT_CONFIG_INVALID = (
        "VaultConfigInvalid",
        "Give the vault exactly one of a connection string or an account URL, well formed.",
    )
    VAULT_INVALID_NAME = (
        "VaultInvalidName",
        "Use plain names: letters, digits, '.', '_' and '-'.",
    )
    VAULT_KEY_INVALID = (
        "VaultKeyInvalid",
        "Store 32 random bytes, base64-encoded, in the vault's key Secret "
        "(for example: openssl rand -base64 32).",
    )
    VAULT_RECOVERY_POINT_NOT_FOUND = (
        "VaultRecoveryPointNotFound",
        "The recovery point does not exist (never committed, or removed by retention).",
    )
    VAULT_INTEGRITY_FAILURE = (
        "VaultIntegrityFailure",
        "The recovery point is damaged or was written with another key; restore from "
        "another recovery point and check who can write to the vault container.",
    )
    VAULT_FORMAT_TOO_NEW = (
        "VaultFormatTooNew",
        "The recovery point was written by a newer sqlharbor: upgrade the agent, operator "
        "and CLI that read this vault.",
    )
    VAULT_WRITER_CLOSED = "VaultWriterClosed", "A bug: data was written after the end; report it."
    VAULT_RECORD_MISMATCH = (
        "VaultRecordMismatch",
        "The engine took another kind of backup than the job asked for; check the engine.",
    )

    # -- configuration of the agent and of the product -----------------------------------
    INVALID_CONFIGURATION = "InvalidConfiguration", "Fix the setting the message names."
    INVALID_AGENT_CONFIG = "InvalidAgentConfig", "Fix the agent's config file."
    UNSUPPORTED_CREDENTIALS = "UnsupportedCredentials", "Use credentials.secretRef."
    UNSUPPORTED_KEY_SOURCE = (
        "UnsupportedKeySource",
        "Set exactly one of keySecretRef or keyVaultKeyId for each key of the vault.",
    )
    CRD_SCHEMA_INVALID = "CrdSchemaInvalid", "Describe each field; no union types; then make crds."

    # -- key wrapping: RSA keys and Azure Key Vault ---------------------------------------
    WRAPPING_KEY_INVALID = (
        "WrappingKeyInvalid",
        "Use an RSA key of 3072 bits or more (2048 only for an existing Key Vault key): an "
        "unencrypted PKCS#8 PEM private key in the Secret, or an RSA or RSA-HSM key in Key Vault.",
    )
    KEY_NOT_LISTED = (
        "KeyNotListed",
        "List the key that wrapped the point in the BackupVault's spec.encryption "
        "(previousKeys), or accept that its points cannot be restored.",
    )
    KEY_NOT_GRANTED = (
        "KeyNotGranted",
        "A bug or a tampered grant: a job may use only the keys the operator granted it.",
    )
    GRANT_REFUSED = (
        "GrantRefused",
        "The operator could not grant the job its storage rights and keys; the message says "
        "why (vault unavailable, key missing, agent key malformed). Fix that; the next job "
        "is granted again.",
    )
    KEY_VAULT_ACCESS_DENIED = (
        "KeyVaultAccessDenied",
        "Grant the identity the Key Vault key permissions get, unwrapKey and sign (access "
        "policy), or the Key Vault Crypto User role on the key (Azure RBAC).",
    )
    KEY_VAULT_AUTHENTICATION_FAILED = (
        "KeyVaultAuthenticationFailed",
        "Check the identity: the managed identity's client id, the workload identity's "
        "federated credential, or the service principal's tenant, client id and secret.",
    )
    KEY_VAULT_KEY_NOT_FOUND = (
        "KeyVaultKeyNotFound",
        "Check the key URL and version; a deleted key or version must be recovered in Key Vault.",
    )
    KEY_VAULT_HOST_NOT_ALLOWED = (
        "KeyVaultHostNotAllowed",
        "Use a key in Azure Key Vault or Managed HSM, or add the key's DNS domain to the "
        "operator's --azure-key-vault-domains (it sends its identity's tokens there).",
    )
    STORAGE_HOST_NOT_ALLOWED = (
        "StorageHostNotAllowed",
        "Use an Azure Blob account URL (https://<account>.blob.core.windows.net), or add its "
        "DNS domain to the operator's --azure-storage-domains (it sends its identity's "
        "tokens there).",
    )
    STORAGE_AUTHENTICATION_FAILED = (
        "StorageAuthenticationFailed",
        "The vault's identity could not get a user delegation key: give it a role on the "
        "account that includes generating one and reading, writing and deleting blobs "
        "(Storage Blob Data Contributor), and check the identity itself.",
    )
    KEY_VAULT_TIMEOUT = (
        "KeyVaultTimeout",
        "Key Vault or Entra ID did not answer in time; check the network path (private "
        "endpoint, DNS, firewall) from the operator's pod. Validation tries again.",
    )
    AZURE_IDENTITY_MISSING = (
        "AzureIdentityMissing",
        "Set the BackupVault's spec.encryption.identity to an identity the operator can use: "
        "workloadIdentity (its pod's), managedIdentity or servicePrincipal.",
    )
    KEY_VAULT_REQUEST_REFUSED = (
        "KeyVaultRequestRefused",
        "Key Vault refused the request; check that the key is an enabled RSA key that permits "
        "wrapKey and unwrapKey.",
    )
