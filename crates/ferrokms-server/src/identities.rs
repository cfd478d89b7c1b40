//! IAM users of the accounts ferrokms serves: their access keys (stored wrapped under the
//! root key) and identity policies. Used by first start, the config file and `ferrokms admin`.

use std::collections::BTreeMap;

use ferrokms_core::ids::AccountId;
use ferrokms_core::material::{credential_binding, RootKeyProvider};
use ferrokms_core::policy::{PolicyDocument, PolicyKind};
use ferrokms_core::random;
use ferrokms_store::{
    AccessKeyRecord, Intent, PrincipalKind, PrincipalRecord, SessionInfo, Store, StoreError,
};
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::bootstrap::{now_millis, DEFAULT_ACCOUNT};
use crate::ServerError;

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_text(len: usize, alphabet: &[u8]) -> Result<Zeroizing<String>, ServerError> {
    let bytes = random::secret_bytes(len).map_err(|_| ServerError::Random)?;
    // 256 is a multiple of both alphabet sizes, so every symbol is equally likely.
    Ok(Zeroizing::new(
        bytes
            .iter()
            .map(|b| alphabet[usize::from(*b) % alphabet.len()] as char)
            .collect(),
    ))
}

/// A new access key pair. The secret exists in the clear only here, on its way to its owner.
pub struct IssuedKey {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl IssuedKey {
    /// A pair from a file of the lines `export_lines` writes (`export ` optional); None if
    /// there is no such file. A file group or others may read is refused.
    pub fn read_file(file: &std::path::Path) -> Result<Option<IssuedKey>, ServerError> {
        use std::io::Read;
        let io = |e: std::io::Error| ServerError::Io(format!("reading {}: {e}", file.display()));
        let mut opened = match std::fs::File::open(file) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        crate::root_file::refuse_if_shared(&opened, file, "credentials file")?;
        let mut text = Zeroizing::new(String::new());
        opened.read_to_string(&mut text).map_err(io)?;
        let value = |name: &str| {
            text.lines().find_map(|line| {
                let line = line.trim();
                let line = line.strip_prefix("export ").unwrap_or(line);
                line.strip_prefix(name)?
                    .strip_prefix('=')
                    .map(str::to_owned)
            })
        };
        let pair = value("AWS_ACCESS_KEY_ID").zip(value("AWS_SECRET_ACCESS_KEY"));
        match pair {
            Some((access_key_id, secret)) => Ok(Some(IssuedKey {
                access_key_id,
                secret_access_key: Zeroizing::new(secret),
            })),
            None => Err(ServerError::Config(format!(
                "{}: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are both needed",
                file.display()
            ))),
        }
    }

    /// The shell lines that set this pair.
    pub fn export_lines(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "export AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={}\n",
            self.access_key_id,
            self.secret_access_key.as_str()
        ))
    }
}

/// A user as the config file declares it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub name: String,
    #[serde(default = "default_account")]
    pub account: String,
    #[serde(default)]
    pub access_keys: Vec<AccessKeySpec>,
    /// Identity policies by name, each a JSON policy document.
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeySpec {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for AccessKeySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeySpec")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub use crate::audit::Changes as IdentityChanges;

const IAM_USER: &str = "AWS::IAM::User";
const IAM_ROLE: &str = "AWS::IAM::Role";
const IAM_ACCESS_KEY: &str = "AWS::IAM::AccessKey";
const IAM_POLICY: &str = "AWS::IAM::Policy";

fn default_account() -> String {
    DEFAULT_ACCOUNT.to_owned()
}

fn config_error(msg: impl Into<String>) -> ServerError {
    ServerError::Config(msg.into())
}

pub fn user_arn(account: &AccountId, name: &str) -> String {
    format!("arn:aws:iam::{account}:user/{name}")
}

/// IAM user names: 1 to 64 of letters, digits and `+=,.@_-`.
fn check_user_name(name: &str) -> Result<(), ServerError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(config_error(format!(
            "invalid user name {name:?}: use 1-64 letters, digits or +=,.@_-"
        )))
    }
}

pub fn parse_account(account: &str) -> Result<AccountId, ServerError> {
    AccountId::parse(account)
        .ok_or_else(|| config_error(format!("account must be 12 digits, not {account:?}")))
}

/// The user `name` of `account`, created if it does not exist yet.
pub async fn ensure_user(
    store: &dyn Store,
    changes: &IdentityChanges,
    account: &AccountId,
    name: &str,
) -> Result<PrincipalRecord, ServerError> {
    ensure_principal(store, changes, account, PrincipalKind::User, name).await
}

/// The user or role `name` of `account`, created if it does not exist yet.
async fn ensure_principal(
    store: &dyn Store,
    changes: &IdentityChanges,
    account: &AccountId,
    kind: PrincipalKind,
    name: &str,
) -> Result<PrincipalRecord, ServerError> {
    check_user_name(name)?;
    let (arn, id_prefix) = match kind {
        PrincipalKind::User => (user_arn(account, name), "AIDA"),
        PrincipalKind::Role => (role_arn(account, name), "AROA"),
    };
    if let Some(existing) = store.principal(&arn).await? {
        return Ok(existing);
    }
    let record = PrincipalRecord {
        arn,
        account: account.clone(),
        kind,
        name: name.to_owned(),
        unique_id: format!("{id_prefix}{}", random_text(17, BASE32)?.as_str()),
        created: now_millis(),
    };
    let audit = match kind {
        PrincipalKind::User => changes.record(
            "CreateUser",
            account,
            json!({ "userName": name }),
            (IAM_USER, &record.arn),
        ),
        PrincipalKind::Role => changes.record(
            "CreateRole",
            account,
            json!({ "roleName": name }),
            (IAM_ROLE, &record.arn),
        ),
    };
    match store.put_principal(&audit, &record).await {
        Ok(()) => Ok(record),
        // Another process made it in between: use theirs.
        Err(StoreError::AlreadyExists) => store
            .principal(&record.arn)
            .await?
            .ok_or_else(|| config_error("principal vanished while being created")),
        Err(e) => Err(e.into()),
    }
}

/// Looks up an existing user by name.
pub async fn find_user(
    store: &dyn Store,
    account: &AccountId,
    name: &str,
) -> Result<PrincipalRecord, ServerError> {
    store
        .principal(&user_arn(account, name))
        .await?
        .ok_or_else(|| config_error(format!("no user {name} in account {account}")))
}

async fn store_key(
    store: &dyn Store,
    changes: &IdentityChanges,
    root: &dyn RootKeyProvider,
    user: &PrincipalRecord,
    access_key_id: &str,
    secret: &str,
) -> Result<(), ServerError> {
    let wrapped = root
        .wrap(&credential_binding(access_key_id), secret.as_bytes())
        .map_err(|_| ServerError::Random)?;
    let audit = changes.record(
        "CreateAccessKey",
        &user.account,
        json!({ "userName": user.name, "accessKeyId": access_key_id }),
        (IAM_ACCESS_KEY, &user.arn),
    );
    store
        .put_access_key(
            &audit,
            &AccessKeyRecord {
                access_key_id: access_key_id.to_owned(),
                account: user.account.clone(),
                principal_arn: user.arn.clone(),
                user_id: user.unique_id.clone(),
                wrapped_secret: wrapped,
                created: now_millis(),
                session: None,
            },
        )
        .await?;
    Ok(())
}

/// Issues a new random access key pair for `user`.
pub async fn issue_access_key(
    store: &dyn Store,
    changes: &IdentityChanges,
    root: &dyn RootKeyProvider,
    user: &PrincipalRecord,
) -> Result<IssuedKey, ServerError> {
    let key = IssuedKey {
        access_key_id: format!("AKIA{}", random_text(16, BASE32)?.as_str()),
        secret_access_key: random_text(40, BASE64)?,
    };
    store_key(
        store,
        changes,
        root,
        user,
        &key.access_key_id,
        &key.secret_access_key,
    )
    .await?;
    Ok(key)
}

/// Attaches an identity policy after checking its grammar.
/// Attaches an identity policy after checking its grammar; an identical one attached
/// already is left as it is (and so records nothing).
pub async fn attach_policy(
    store: &dyn Store,
    changes: &IdentityChanges,
    user: &PrincipalRecord,
    name: &str,
    document: &str,
) -> Result<(), ServerError> {
    PolicyDocument::parse(document, PolicyKind::Identity)
        .and_then(|p| p.check_new_policy())
        .map_err(|e| config_error(format!("policy {name} of {}: {e}", user.arn)))?;
    if store.identity_policy(&user.arn, name).await?.as_deref() == Some(document) {
        return Ok(());
    }
    let audit = match user.kind {
        PrincipalKind::User => changes.record(
            "PutUserPolicy",
            &user.account,
            json!({ "userName": user.name, "policyName": name, "policyDocument": document }),
            (IAM_POLICY, &user.arn),
        ),
        PrincipalKind::Role => changes.record(
            "PutRolePolicy",
            &user.account,
            json!({ "roleName": user.name, "policyName": name, "policyDocument": document }),
            (IAM_POLICY, &user.arn),
        ),
    };
    store
        .put_identity_policy(&audit, &user.arn, name, document)
        .await?;
    Ok(())
}

/// Detaches a named identity policy; whether it was attached.
pub async fn detach_policy(
    store: &dyn Store,
    changes: &IdentityChanges,
    user: &PrincipalRecord,
    name: &str,
) -> Result<bool, ServerError> {
    if store.identity_policy(&user.arn, name).await?.is_none() {
        return Ok(false);
    }
    let event = match user.kind {
        PrincipalKind::User => "DeleteUserPolicy",
        PrincipalKind::Role => "DeleteRolePolicy",
    };
    let audit = changes.record(
        event,
        &user.account,
        json!({ "userName": user.name, "policyName": name }),
        (IAM_POLICY, &user.arn),
    );
    Ok(store
        .delete_identity_policy(&audit, &user.arn, name)
        .await?)
}

/// Revokes an access key; whether there was one.
pub async fn delete_access_key(
    store: &dyn Store,
    changes: &IdentityChanges,
    access_key_id: &str,
) -> Result<bool, ServerError> {
    let Some(key) = store.access_key(access_key_id).await? else {
        return Ok(false);
    };
    let audit = changes.record(
        "DeleteAccessKey",
        &key.account,
        json!({ "accessKeyId": access_key_id }),
        (IAM_ACCESS_KEY, &key.principal_arn),
    );
    Ok(store.delete_access_key(&audit, access_key_id).await?)
}

/// Makes the store hold the users the config file declares: creates missing users, adds
/// their listed access keys and sets their listed policies. Running it twice changes nothing.
pub async fn apply_users(
    store: &dyn Store,
    changes: &IdentityChanges,
    root: &dyn RootKeyProvider,
    users: &[UserSpec],
) -> Result<(), ServerError> {
    for spec in users {
        let account = parse_account(&spec.account)?;
        let user = ensure_user(store, changes, &account, &spec.name).await?;
        for key in &spec.access_keys {
            match store.access_key(&key.id).await? {
                Some(existing) if existing.principal_arn == user.arn => {}
                Some(_) => {
                    return Err(config_error(format!(
                        "access key {} already belongs to another principal",
                        key.id
                    )))
                }
                None => store_key(store, changes, root, &user, &key.id, &key.secret).await?,
            }
        }
        for (name, document) in &spec.policies {
            attach_policy(store, changes, &user, name, document).await?;
        }
    }
    Ok(())
}

/// A role as the config file declares it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub name: String,
    #[serde(default = "default_account")]
    pub account: String,
    /// Who may assume the role; by default the principals of its own account.
    pub trust_policy: Option<String>,
    /// The longest session AssumeRole may give, in seconds (IAM's MaxSessionDuration:
    /// 3600 to 43200, by default 3600).
    pub max_session_duration: Option<i64>,
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
}

pub fn role_arn(account: &AccountId, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

/// The trust policy of a role created without one: its account may assume it (through IAM
/// policies that allow `sts:AssumeRole`).
pub fn default_trust_policy(account: &AccountId) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole"}}]}}"#,
        account.root_arn()
    )
}

/// IAM's default MaxSessionDuration of a role.
pub const DEFAULT_MAX_SESSION_SECONDS: i64 = 3600;

/// The range IAM allows for a role's MaxSessionDuration.
pub const MAX_SESSION_RANGE: std::ops::RangeInclusive<i64> = 3600..=43_200;

/// The role `name` of `account`, created if needed, with `trust_policy` and the longest
/// session it may give set.
pub async fn ensure_role(
    store: &dyn Store,
    changes: &IdentityChanges,
    account: &AccountId,
    name: &str,
    trust_policy: &str,
    max_session_seconds: Option<i64>,
) -> Result<PrincipalRecord, ServerError> {
    let arn = role_arn(account, name);
    PolicyDocument::parse(trust_policy, PolicyKind::Key)
        .and_then(|p| p.check_new_policy())
        .map_err(|e| config_error(format!("trust policy of {arn}: {e}")))?;
    let max_session_seconds = max_session_seconds.unwrap_or(DEFAULT_MAX_SESSION_SECONDS);
    if !MAX_SESSION_RANGE.contains(&max_session_seconds) {
        return Err(config_error(format!(
            "max_session_duration of {arn} must be 3600 to 43200 seconds, not {max_session_seconds}"
        )));
    }
    let record = ensure_principal(store, changes, account, PrincipalKind::Role, name).await?;
    let trust = ferrokms_store::RoleTrust {
        role_arn: arn,
        document: trust_policy.to_owned(),
        max_session_seconds,
    };
    if store.trust_policy(&trust.role_arn).await?.as_ref() != Some(&trust) {
        let audit = changes.record(
            "UpdateAssumeRolePolicy",
            account,
            json!({ "roleName": name, "policyDocument": trust_policy, "maxSessionDuration": max_session_seconds }),
            (IAM_ROLE, &trust.role_arn),
        );
        store.put_trust_policy(&audit, &trust).await?;
    }
    Ok(record)
}

/// Makes the store hold the roles the config file declares.
pub async fn apply_roles(
    store: &dyn Store,
    changes: &IdentityChanges,
    roles: &[RoleSpec],
) -> Result<(), ServerError> {
    for spec in roles {
        let account = parse_account(&spec.account)?;
        let trust = spec
            .trust_policy
            .clone()
            .unwrap_or_else(|| default_trust_policy(&account));
        let role = ensure_role(
            store,
            changes,
            &account,
            &spec.name,
            &trust,
            spec.max_session_duration,
        )
        .await?;
        for (name, document) in &spec.policies {
            attach_policy(store, changes, &role, name, document).await?;
        }
    }
    Ok(())
}

/// Temporary credentials of a role session.
pub struct SessionCredentials {
    pub key: IssuedKey,
    pub session_token: Zeroizing<String>,
    pub assumed_role_arn: String,
    pub assumed_role_id: String,
}

/// Issues temporary credentials for a session of `role`, valid until `expires`. Only a
/// digest of the session token is stored.
pub async fn issue_session(
    store: &dyn Store,
    audit: &Intent,
    root: &dyn RootKeyProvider,
    role: &PrincipalRecord,
    session_name: &str,
    expires: i64,
) -> Result<SessionCredentials, ServerError> {
    let key = IssuedKey {
        access_key_id: format!("ASIA{}", random_text(16, BASE32)?.as_str()),
        secret_access_key: random_text(40, BASE64)?,
    };
    let session_token = random_text(192, BASE64)?;
    let assumed_role_arn = format!(
        "arn:aws:sts::{}:assumed-role/{}/{session_name}",
        role.account, role.name
    );
    let assumed_role_id = format!("{}:{session_name}", role.unique_id);
    let wrapped = root
        .wrap(
            &credential_binding(&key.access_key_id),
            key.secret_access_key.as_bytes(),
        )
        .map_err(|_| ServerError::Random)?;
    store
        .put_access_key(
            audit,
            &AccessKeyRecord {
                access_key_id: key.access_key_id.clone(),
                account: role.account.clone(),
                principal_arn: assumed_role_arn.clone(),
                user_id: assumed_role_id.clone(),
                wrapped_secret: wrapped,
                created: now_millis(),
                session: Some(SessionInfo {
                    token_hash: crate::sigv4::sha256_hex(session_token.as_bytes()),
                    expires,
                    role_arn: role.arn.clone(),
                }),
            },
        )
        .await?;
    Ok(SessionCredentials {
        key,
        session_token,
        assumed_role_arn,
        assumed_role_id,
    })
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    /// Every type that holds a secret access key prints without it.
    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let issued = IssuedKey {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: Zeroizing::new(secret.into()),
        };
        let spec = AccessKeySpec {
            id: "AKIAEXAMPLE".into(),
            secret: secret.into(),
        };
        let user = UserSpec {
            name: "carol".into(),
            account: default_account(),
            access_keys: vec![spec],
            policies: BTreeMap::new(),
        };
        let credentials = crate::AdminCredentials {
            key: IssuedKey {
                access_key_id: "AKIAEXAMPLE".into(),
                secret_access_key: Zeroizing::new(secret.into()),
            },
            file: "/tmp/admin-credentials".into(),
            made: true,
        };
        for shown in [
            format!("{issued:?}"),
            format!("{user:?}"),
            format!("{credentials:?}"),
            format!("{:#?}", user),
        ] {
            assert!(shown.contains("AKIAEXAMPLE"), "{shown}");
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
