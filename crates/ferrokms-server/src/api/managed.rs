//! AWS managed keys: `alias/aws/<service>` names a key that is made on first use, belongs to
//! KMS (KeyManager AWS), rotates every year, and whose policy allows use only through its
//! service. That policy is also what refuses disabling, deleting or re-policying it.

use ferrokms_core::ids::{AccountId, AliasName, KeyArn, KeyId, Region};
use ferrokms_core::key::{
    KeyManager, KeyMetadata, KeySpec, KeyState, KeyUsage, Origin, RotationSchedule,
    DEFAULT_ROTATION_PERIOD_DAYS,
};
use ferrokms_core::material::{KeyMaterial, MaterialId};
use ferrokms_store::{AliasRecord, StoreError, StoredMaterial};

use super::{store_failure, Call};
use crate::error::ApiError;

/// Services that have AWS managed keys, with the endpoint their calls come through, in
/// alias order. AWS lists their aliases in a fresh account before any key exists (seen:
/// dynamodb, es, glue, kinesisvideo, rds, redshift, ssm, xray without a key; backup,
/// codecommit, ebs, elasticfilesystem, fsx, lambda, lightsail, s3 with one once used); the
/// full list is not documented.
const SERVICES: &[(&str, &str)] = &[
    ("acm", "acm"),
    ("backup", "backup"),
    ("codecommit", "codecommit"),
    ("dynamodb", "dynamodb"),
    ("ebs", "ec2"),
    ("elasticfilesystem", "elasticfilesystem"),
    ("es", "es"),
    ("fsx", "fsx"),
    ("glue", "glue"),
    ("kinesis", "kinesis"),
    ("kinesisvideo", "kinesisvideo"),
    ("lambda", "lambda"),
    ("lightsail", "lightsail"),
    ("logs", "logs"),
    ("rds", "rds"),
    ("redshift", "redshift"),
    ("s3", "s3"),
    ("secretsmanager", "secretsmanager"),
    ("sns", "sns"),
    ("sqs", "sqs"),
    ("ssm", "ssm"),
    ("xray", "xray"),
];

/// The `alias/aws/<service>` names every account has, whether or not their key exists.
pub fn predefined_aliases() -> impl Iterator<Item = AliasName> {
    SERVICES
        .iter()
        .filter_map(|(s, _)| AliasName::parse_existing(&format!("alias/aws/{s}")).ok())
}

fn managed_policy(account: &AccountId, region: &Region, service: &str, via: &str) -> String {
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "auto-{service}-1",
  "Statement" : [ {{
    "Sid" : "Allow access through {service} for all principals in the account that are authorized to use {service}",
    "Effect" : "Allow",
    "Principal" : {{ "AWS" : "*" }},
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {{
      "StringEquals" : {{
        "kms:CallerAccount" : "{account}",
        "kms:ViaService" : "{via}.{region}.amazonaws.com"
      }}
    }}
  }}, {{
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {{ "AWS" : "{root}" }},
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant" ],
    "Resource" : "*"
  }} ]
}}"#,
        root = account.root_arn()
    )
}

/// The AWS managed key an `alias/aws/<service>` names, made now if this is its first use.
/// None if the alias names no service with a managed key.
pub async fn managed_key(
    call: &Call<'_>,
    region: &Region,
    account: &AccountId,
    name: &AliasName,
) -> Result<Option<AliasRecord>, ApiError> {
    let Some(service) = name.as_str().strip_prefix("alias/aws/") else {
        return Ok(None);
    };
    let Some((_, via)) = SERVICES.iter().find(|(s, _)| *s == service) else {
        return Ok(None);
    };
    // Only the account itself brings its managed keys into being.
    if account != call.request.principal().account() {
        return Ok(None);
    }
    let material_id = MaterialId::generate()?;
    let arn = KeyArn {
        region: region.clone(),
        account: account.clone(),
        key_id: KeyId::generate(false)?,
    };
    let material = KeyMaterial::generate_symmetric()?;
    let stored = StoredMaterial {
        material_id,
        wrapped: call
            .services
            .root
            .wrap_material(&arn, &material_id, &material)?,
        created: call.now,
        rotation_type: None,
    };
    let mut key = KeyMetadata {
        arn,
        creation_date: call.now,
        description: format!(
            "Default key that protects my {service} data when no other key is defined"
        ),
        key_usage: KeyUsage::EncryptDecrypt,
        key_spec: KeySpec::SymmetricDefault,
        origin: Origin::AwsKms,
        key_manager: KeyManager::Aws,
        state: KeyState::Enabled,
        deletion_date: None,
        pending_window_days: None,
        current_material: material_id,
        policy: managed_policy(account, region, service, via).into(),
        public_key: None,
        rotation: RotationSchedule::default(),
        import: Default::default(),
        replication: None,
        custom_key_store: None,
        revision: 0,
    };
    // AWS managed keys rotate every year.
    key.enable_rotation(DEFAULT_ROTATION_PERIOD_DAYS, call.now)?;
    let store = &call.services.store;
    store
        .create_key(call.audit(), &key, std::slice::from_ref(&stored), &[])
        .await
        .map_err(store_failure)?;
    let alias = AliasRecord {
        region: region.clone(),
        account: account.clone(),
        name: name.clone(),
        target: key.id(),
        created: call.now,
        updated: call.now,
    };
    match store.create_alias(call.audit(), &alias, 50).await {
        Ok(()) => Ok(Some(alias)),
        Err(StoreError::AlreadyExists) => {
            // Another request made it first: use theirs, drop ours.
            store
                .delete_key(call.audit(), region, &key.id())
                .await
                .map_err(store_failure)?;
            store
                .alias(region, account, name)
                .await
                .map_err(store_failure)
        }
        Err(e) => Err(store_failure(e)),
    }
}
