//! The operation table against the KMS service model: every operation is declared, with the
//! cross-account use and the permissions its documentation states.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;

/// `shared/reference/models/kms-service-2.json`, beside the checkout.
fn model() -> Value {
    let path = ferrokms_core::reference::file("models/kms-service-2.json");
    let text = std::fs::read_to_string(&path).expect("read the model");
    serde_json::from_str(&text).expect("the model is JSON")
}

/// The documentation's text: tags dropped, entities read, white space collapsed.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn between<'a>(text: &'a str, start: &str, ends: &[&str]) -> &'a str {
    let Some(from) = text.find(start) else {
        return "";
    };
    let rest = &text[from + start.len()..];
    let to = ends
        .iter()
        .filter_map(|e| rest.find(e))
        .min()
        .unwrap_or(rest.len());
    &rest[..to]
}

/// The permissions a "Required permissions" paragraph lists: (action, resource, when).
fn documented_permissions(operation: &str, paragraph: &str) -> BTreeSet<(String, String, String)> {
    // Every `kms:Action` (not a wildcard such as `kms:ReEncrypt*`) with its position.
    let mut mentions: Vec<(usize, usize, String)> = Vec::new();
    let mut at = 0;
    while let Some(i) = paragraph[at..].find("kms:") {
        let start = at + i;
        let name: String = paragraph[start + 4..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let end = start + 4 + name.len();
        if !name.is_empty() && !paragraph[end..].starts_with('*') {
            mentions.push((start, end, name));
        }
        at = end.max(start + 4);
    }
    let mut out = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (i, (start, end, action)) in mentions.iter().enumerate() {
        let before = match i {
            0 => &paragraph[..*start],
            _ => &paragraph[mentions[i - 1].1..*start],
        };
        let after = &paragraph[*end..mentions.get(i + 1).map_or(paragraph.len(), |m| m.0)];
        let policy = match (after.find("key policy"), after.find("IAM policy")) {
            (Some(k), Some(iam)) if k < iam => Policy::Key,
            (Some(_), None) => Policy::Key,
            (_, Some(_)) => Policy::Iam,
            (None, None) => {
                // A repeated mention that names no policy (ListRetirableGrants' note).
                assert!(
                    seen.contains(action),
                    "{operation}: no policy named for kms:{action} in {after:?}"
                );
                continue;
            }
        };
        seen.insert(action.clone());
        let on = if after.contains("replica Region") {
            On::ReplicaRegion
        } else if after.contains("current replica key") {
            On::ReplicaKey
        } else if after.contains("on the alias") {
            On::Alias
        } else if after.contains("current KMS key") {
            On::CurrentKey
        } else if after.contains("new KMS key") {
            On::NewKey
        } else if after.contains("source KMS key") {
            On::SourceKey
        } else if after.contains("destination KMS key") {
            On::DestinationKey
        } else if after.contains("on the KMS key") && operation == "CreateAlias" {
            // "kms:CreateAlias on the KMS key": the key the new alias points to.
            On::NewKey
        } else if after.contains("on the KMS key") && operation == "DeleteAlias" {
            On::CurrentKey
        } else if policy == Policy::Key {
            On::Key
        } else {
            On::Account
        };
        assert_eq!(
            on.policy(),
            policy,
            "{operation}: kms:{action} in {after:?}"
        );
        let when = if before.contains("Tags parameter") {
            When::TagsGiven
        } else {
            When::Always
        };
        out.insert((action.clone(), format!("{on:?}"), format!("{when:?}")));
    }
    out
}

#[test]
fn table_matches_the_model() {
    let model = model();
    let operations = model["operations"].as_object().expect("operations");
    let named: BTreeSet<&str> = operations.keys().map(String::as_str).collect();
    let declared: BTreeSet<&str> = OPERATIONS.iter().map(|s| s.name).collect();
    assert_eq!(
        named, declared,
        "the table declares exactly the model's operations"
    );
    assert_eq!(OPERATIONS.len(), 54);

    let mut checked = 0;
    for spec in OPERATIONS {
        let doc = text_of(
            operations[spec.name]["documentation"]
                .as_str()
                .expect("documentation"),
        );
        let cross = between(&doc, "Cross-account use", &["Required permissions"]);
        assert!(
            !cross.is_empty(),
            "{}: no Cross-account use paragraph",
            spec.name
        );
        let yes = cross.trim_start_matches([' ', ':']).starts_with("Yes");
        assert_eq!(
            spec.cross_account, yes,
            "{}: cross-account use: {cross}",
            spec.name
        );
        assert_eq!(
            spec.aliases,
            cross.contains("alias ARN"),
            "{}: alias names: {cross}",
            spec.name
        );

        let paragraph = between(
            &doc,
            "Required permissions",
            &["Related operations", "Eventual consistency"],
        );
        let documented = documented_permissions(spec.name, paragraph);
        let table: BTreeSet<(String, String, String)> = spec
            .permissions
            .iter()
            .filter(|p| p.when != When::Otherwise)
            .map(|p| {
                (
                    p.action.to_owned(),
                    format!("{:?}", p.on),
                    format!("{:?}", p.when),
                )
            })
            .collect();
        assert_eq!(
            table, documented,
            "{}: the table's permissions differ from the model's: {paragraph}",
            spec.name
        );
        checked += 1;
    }
    assert_eq!(checked, 54);
}

/// RetireGrant's documentation names no permission ("determined primarily by the grant");
/// the key policy's kms:RetireGrant is the fallback AWS describes in "Retiring and revoking
/// grants", and the only permission the table adds beyond the model.
/// Aliases are taken only where another account's key may be used too, so that resolving
/// another account's alias needs no cross-account check of its own.
#[test]
fn operations_that_take_aliases_are_cross_account() {
    for spec in OPERATIONS.iter().filter(|s| s.aliases) {
        assert!(spec.cross_account, "{}", spec.name);
    }
}

#[test]
fn only_retire_grant_adds_a_fallback_permission() {
    let extra: Vec<&str> = OPERATIONS
        .iter()
        .filter(|s| s.permissions.iter().any(|p| p.when == When::Otherwise))
        .map(|s| s.name)
        .collect();
    assert_eq!(extra, ["RetireGrant"]);
}

#[test]
fn the_table_is_in_the_enums_order_and_found_by_name() {
    for (i, spec) in OPERATIONS.iter().enumerate() {
        assert_eq!(spec.operation as usize, i, "{}", spec.name);
        assert_eq!(format!("{:?}", spec.operation), spec.name);
        assert_eq!(spec.operation.spec().name, spec.name);
        assert_eq!(
            Operation::spec_named(spec.name).map(|s| s.operation),
            Some(spec.operation)
        );
    }
    assert!(Operation::spec_named("DescribeKeys").is_none());
    assert!(Operation::spec_named("describeKey").is_none());
}

/// Members that hold secrets or unbounded caller data never reach an audit record.
const NEVER_AUDITED: &[&str] = &[
    "Plaintext",
    "CiphertextBlob",
    "Message",
    "Signature",
    "Mac",
    "ImportToken",
    "EncryptedKeyMaterial",
    "GrantToken",
    "GrantTokens",
    "KeyStorePassword",
    "XksProxyAuthenticationCredential",
    "Recipient",
    "PublicKey",
];

#[test]
fn audited_members_are_members_of_the_request_and_hold_no_secret() {
    let model = model();
    for spec in OPERATIONS {
        let input = model["operations"][spec.name]["input"]["shape"]
            .as_str()
            .expect("input shape");
        let members = model["shapes"][input]["members"]
            .as_object()
            .expect("members");
        for m in spec.audited {
            assert!(members.contains_key(*m), "{}: no member {m}", spec.name);
            assert!(!NEVER_AUDITED.contains(m), "{}: {m} is secret", spec.name);
        }
    }
}

/// Operations that change nothing are the ones CloudTrail marks read-only: descriptions,
/// listings, reads and every cryptographic operation.
#[test]
fn read_only_operations() {
    for spec in OPERATIONS {
        let reads = ["Describe", "List", "Get"]
            .iter()
            .any(|p| spec.name.starts_with(p))
            || spec.rate == Rate::ByKey
            || spec.operation == Operation::GenerateRandom;
        assert_eq!(spec.read_only(), reads, "{}", spec.name);
    }
}
