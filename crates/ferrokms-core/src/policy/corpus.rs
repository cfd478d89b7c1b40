//! The IAM semantics corpus: one row per documented rule of policy evaluation, each citing
//! the AWS documentation it encodes. Sources (IAM User Guide unless named):
//! - OPS: "IAM JSON policy elements: Condition operators"
//! - MULTI: "Conditions with multiple context keys or values"
//! - SVMV: "Single-valued vs. multivalued context keys"
//! - MVEX: "Multivalued context key examples"
//! - COND: "IAM JSON policy elements: Condition"
//! - ACT / RES / PRIN / NOTPRIN / NOTACT / NOTRES: the element pages
//! - DENYALLOW: "Policy evaluation logic"
//! - KMS-KP: KMS Developer Guide, "Key policies in AWS KMS"
//! - KMS-DEF: KMS Developer Guide, "Default key policy"
//! - KMS-XACCT: KMS Developer Guide, "Allowing users in other accounts to use a KMS key"
//! - KMS-COND: KMS Developer Guide, "AWS KMS condition keys"

use serde_json::json;

use super::*;

const ACCT: &str = "111122223333";
const OTHER: &str = "444455556666";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const EVE: &str = "arn:aws:iam::444455556666:user/eve";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Eff {
    Allow,
    Deny,
}

/// A condition row: a statement of `effect` with `condition`, a request with `keys`, and
/// whether the statement applies.
struct ConditionRow {
    cites: &'static str,
    effect: Eff,
    condition: serde_json::Value,
    keys: &'static [(&'static str, &'static [&'static str])],
    applies: bool,
}

fn request(keys: &[(&str, &[&str])]) -> RequestContext {
    let mut c = RequestContext::new("kms:Decrypt", KEY);
    for (k, v) in keys {
        c.set(k, v.iter().map(|s| s.to_string()).collect());
    }
    c
}

fn alice() -> Caller<'static> {
    Caller {
        arn: ALICE,
        account: ACCT,
        role_arn: None,
    }
}

fn key_policy(statements: serde_json::Value) -> PolicyDocument {
    PolicyDocument::parse(
        &json!({"Version": "2012-10-17", "Statement": statements}).to_string(),
        PolicyKind::Key,
    )
    .expect("policy parses")
}

fn identity(statements: serde_json::Value) -> PolicyDocument {
    PolicyDocument::parse(
        &json!({"Version": "2012-10-17", "Statement": statements}).to_string(),
        PolicyKind::Identity,
    )
    .expect("policy parses")
}

/// Whether the row's statement applies, read from the decision: an Allow lets the request
/// in; a Deny keeps it out of a policy that otherwise allows everything.
fn statement_applies(row: &ConditionRow) -> bool {
    let ctx = request(row.keys);
    let caller = alice();
    let conditional = |effect: &str| {
        json!({"Effect": effect, "Principal": {"AWS": ALICE}, "Action": "kms:*", "Resource": "*",
            "Condition": row.condition})
    };
    match row.effect {
        Eff::Allow => {
            let policy = key_policy(json!([conditional("Allow")]));
            decide(
                Resource::WithPolicy {
                    policy: &policy,
                    account: ACCT,
                },
                &caller,
                &[],
                &ctx,
            ) == Decision::Allowed
        }
        Eff::Deny => {
            let policy = key_policy(json!([
                {"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:*", "Resource": "*"},
                conditional("Deny"),
            ]));
            decide(
                Resource::WithPolicy {
                    policy: &policy,
                    account: ACCT,
                },
                &caller,
                &[],
                &ctx,
            ) == Decision::Denied(DeniedBy::ResourcePolicy)
        }
    }
}

fn condition_rows() -> Vec<ConditionRow> {
    use Eff::*;
    let row = |cites, effect, condition, keys, applies| ConditionRow {
        cites,
        effect,
        condition,
        keys,
        applies,
    };
    let ec = "kms:EncryptionContext:purpose";
    vec![
        // Absent keys.
        row("OPS: \"If the key that you specify in a policy condition is not present in the request context, the values do not match and the condition is false.\"",
            Allow, json!({"StringEquals": {ec: "backup"}}), &[], false),
        row("OPS: \"If the policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the right key is not present, the condition is true.\"",
            Deny, json!({"StringNotEquals": {ec: "backup"}}), &[], true),
        row("OPS: negated operators and an absent key: StringNotEqualsIgnoreCase",
            Deny, json!({"StringNotEqualsIgnoreCase": {ec: "backup"}}), &[], true),
        row("OPS: negated operators and an absent key: StringNotLike",
            Deny, json!({"StringNotLike": {ec: "back*"}}), &[], true),
        row("OPS: negated operators and an absent key: ArnNotEquals",
            Deny, json!({"ArnNotEquals": {"aws:SourceArn": "arn:aws:s3:::b"}}), &[], true),
        row("OPS: negated operators and an absent key: ArnNotLike",
            Deny, json!({"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::*"}}), &[], true),
        row("OPS: negated operators and an absent key: NumericNotEquals",
            Deny, json!({"NumericNotEquals": {"kms:RotationPeriodInDays": "365"}}), &[], true),
        row("OPS: negated operators and an absent key: DateNotEquals",
            Deny, json!({"DateNotEquals": {"kms:ValidTo": "2030-01-01T00:00:00Z"}}), &[], true),
        row("OPS: negated operators and an absent key: NotIpAddress (aws:SourceIp absent through a VPC endpoint)",
            Deny, json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), &[], true),
        row("GCK aws:SourceVpce: \"This key is included in the request context only if the requester uses a VPC endpoint\": a Deny unless through the endpoint denies",
            Deny, json!({"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}), &[], true),
        row("OPS: positive operators and an absent key: ArnLike",
            Allow, json!({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"}}), &[], false),
        row("OPS: positive operators and an absent key: IpAddress",
            Allow, json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}), &[], false),
        row("OPS: positive operators and an absent key: NumericLessThan",
            Allow, json!({"NumericLessThan": {"kms:RotationPeriodInDays": "400"}}), &[], false),
        row("OPS: positive operators and an absent key: Bool",
            Allow, json!({"Bool": {"kms:GrantIsForAWSResource": "false"}}), &[], false),
        // IfExists.
        row("OPS ...IfExists: \"If the key is not present, evaluate the condition element as true.\"",
            Allow, json!({"StringEqualsIfExists": {ec: "backup"}}), &[], true),
        row("OPS ...IfExists: \"If the condition key is present in the context of the request, process the key as specified in the policy.\"",
            Allow, json!({"StringEqualsIfExists": {ec: "backup"}}), &[("kms:EncryptionContext:purpose", &["other"])], false),
        row("OPS: \"You can add IfExists to the end of any condition operator name except the Null condition\": with a set operator too, an absent key is true",
            Deny, json!({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "secret"}}), &[], true),
        row("OPS: \"If you are using an \"Effect\": \"Deny\" element with a negated condition operator like StringNotEqualsIfExists, the request is still denied even if the condition key is not present.\"",
            Deny, json!({"StringNotEqualsIfExists": {ec: "backup"}}), &[], true),
        // Null.
        row("OPS Null: \"true (the key doesn't exist — it is null)\"",
            Allow, json!({"Null": {"kms:EncryptionContextKeys": "true"}}), &[], true),
        row("OPS Null: true does not hold when the key exists",
            Allow, json!({"Null": {"kms:EncryptionContextKeys": "true"}}), &[("kms:EncryptionContextKeys", &["a"])], false),
        row("OPS Null: \"false (the key exists and its value is not null)\"",
            Allow, json!({"Null": {"kms:EncryptionContextKeys": false}}), &[("kms:EncryptionContextKeys", &["a"])], true),
        row("OPS Null: false does not hold when the key is absent",
            Allow, json!({"Null": {"kms:EncryptionContextKeys": false}}), &[], false),
        // Strings and case.
        row("OPS: \"StringEquals | Exact matching, case sensitive\"",
            Allow, json!({"StringEquals": {ec: "backup"}}), &[("kms:EncryptionContext:purpose", &["Backup"])], false),
        row("OPS: \"StringEqualsIgnoreCase | Exact matching, ignoring case\"",
            Allow, json!({"StringEqualsIgnoreCase": {ec: "backup"}}), &[("kms:EncryptionContext:purpose", &["BACKUP"])], true),
        row("COND: \"Context key names are not case-sensitive.\"",
            Allow, json!({"StringEquals": {"KMS:ENCRYPTIONCONTEXT:Purpose": "backup"}}), &[("kms:encryptioncontext:purpose", &["backup"])], true),
        row("KMS-COND kms:EncryptionContext:context-key: \"The key name is not case sensitive. The case sensitivity of the value is determined by the condition operator\"",
            Allow, json!({"StringEquals": {"kms:EncryptionContext:Purpose": "backup"}}), &[("kms:EncryptionContext:purpose", &["backup"])], true),
        row("OPS StringLike: \"The values can include multi-character match wildcards (*) and single-character match wildcards (?) anywhere in the string.\"",
            Allow, json!({"StringLike": {ec: "back?p*"}}), &[("kms:EncryptionContext:purpose", &["backup-2026"])], true),
        row("OPS StringLike is case-sensitive",
            Allow, json!({"StringLike": {ec: "back*"}}), &[("kms:EncryptionContext:purpose", &["Backup"])], false),
        row("OPS: StringEquals treats * literally (\"You must specify wildcards to achieve partial string matches\" is said of StringLike only)",
            Allow, json!({"StringEquals": {ec: "back*"}}), &[("kms:EncryptionContext:purpose", &["backup"])], false),
        // Several values and keys.
        row("MULTI: \"If a single condition operator includes multiple values for a context key, those values are evaluated using a logical OR.\"",
            Allow, json!({"StringEquals": {ec: ["backup", "archive"]}}), &[("kms:EncryptionContext:purpose", &["archive"])], true),
        row("MULTI: \"If a single negated matching condition operator includes multiple values for a context key, those values are evaluated using a logical NOR.\"",
            Deny, json!({"StringNotEquals": {ec: ["backup", "archive"]}}), &[("kms:EncryptionContext:purpose", &["archive"])], false),
        row("MULTI: negated operators with several values: a value matching none of them",
            Deny, json!({"StringNotEquals": {ec: ["backup", "archive"]}}), &[("kms:EncryptionContext:purpose", &["other"])], true),
        row("MULTI: \"If your policy statement has multiple context keys attached to a single condition operator, the context keys are evaluated using a logical AND.\"",
            Allow, json!({"StringEquals": {ec: "backup", "kms:CallerAccount": ACCT}}), &[("kms:EncryptionContext:purpose", &["backup"])], false),
        row("MULTI: \"If your policy statement has multiple condition operators, the condition operators are evaluated using a logical AND.\"",
            Allow, json!({"StringEquals": {ec: "backup"}, "Bool": {"aws:SecureTransport": "true"}}),
            &[("kms:EncryptionContext:purpose", &["backup"]), ("aws:SecureTransport", &["false"])], false),
        row("MULTI: operators and keys that all hold",
            Allow, json!({"StringEquals": {ec: "backup"}, "Bool": {"aws:SecureTransport": "true"}}),
            &[("kms:EncryptionContext:purpose", &["backup"]), ("aws:SecureTransport", &["true"])], true),
        // Set qualifiers.
        row("SVMV ForAllValues: \"It also returns true if there are no context keys in the request.\"",
            Allow, json!({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]}}), &[], true),
        row("SVMV ForAllValues: \"The condition returns true if every context key value in the request matches a context key value in the policy.\"",
            Allow, json!({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]}}), &[("kms:EncryptionContextKeys", &["a", "b"])], true),
        row("SVMV ForAllValues: a request value outside the policy's values",
            Allow, json!({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]}}), &[("kms:EncryptionContextKeys", &["a", "c"])], false),
        row("SVMV: \"You should always include the Null condition operator in your policy with a false value to check if the context key exists\"",
            Allow, json!({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a"]}, "Null": {"kms:EncryptionContextKeys": "false"}}), &[], false),
        row("SVMV ForAnyValue: \"For no matching context key or if the key does not exist, the condition returns false.\"",
            Allow, json!({"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "a"}}), &[], false),
        row("SVMV ForAnyValue: \"tests whether at least one member of the set of request context key values matches at least one member\"",
            Allow, json!({"ForAnyValue:StringLike": {"kms:EncryptionContextKeys": "app*"}}), &[("kms:EncryptionContextKeys", &["x", "app-id"])], true),
        row("SVMV: \"When using ForAnyValue with a Deny effect, if the context key is not present in the request, the policy evaluates as No match.\"",
            Deny, json!({"ForAnyValue:StringEquals": {"aws:TagKeys": "secret"}}), &[], false),
        row("OPS: \"ForAnyValue:StringNotEquals ... At least one context key value in the request must NOT match any of values\"",
            Allow, json!({"ForAnyValue:StringNotEquals": {"aws:TagKeys": "a"}}), &[("aws:TagKeys", &["a", "b"])], true),
        row("OPS ForAnyValue:StringNotEquals: every request value matches",
            Allow, json!({"ForAnyValue:StringNotEquals": {"aws:TagKeys": "a"}}), &[("aws:TagKeys", &["a"])], false),
        row("OPS: \"ForAllValues:StringNotEquals ... None of the values of the context key in the request can match any of the context key values in your policy.\"",
            Deny, json!({"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}), &[("aws:TagKeys", &["key1:legal"])], false),
        row("MVEX Deny ForAllValues:StringNotLike aws:TagKeys key1*: [key2:audit] → Match",
            Deny, json!({"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}), &[("aws:TagKeys", &["key2:audit"])], true),
        row("MVEX: \"No aws:TagKeys in the request context.\" → Match (ForAllValues with a negated operator)",
            Deny, json!({"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}), &[], true),
        // A plain operator on several values (a multivalued key without a set operator, or
        // context keys that differ only by case): undefined by IAM; ferrokms fails closed.
        row("UNDOCUMENTED (fail closed): a Deny with a plain negated operator applies if any value satisfies it",
            Deny, json!({"StringNotEquals": {"kms:GrantOperations": "Decrypt"}}), &[("kms:GrantOperations", &["Decrypt", "CreateGrant"])], true),
        row("UNDOCUMENTED (fail closed): an Allow with a plain operator needs every value to satisfy it",
            Allow, json!({"StringEquals": {ec: "A"}}), &[("kms:EncryptionContext:purpose", &["B", "A"])], false),
        row("KMS-COND: \"the condition key ... is not case sensitive\": Tenant and tenant in one context are one key; a Deny unless A sees B too",
            Deny, json!({"StringNotEquals": {ec: "A"}}), &[("kms:EncryptionContext:purpose", &["B", "A"])], true),
        row("VARS: policy variables are not substituted here; a Deny that uses one applies",
            Deny, json!({"StringEquals": {"kms:GranteePrincipal": "${aws:PrincipalArn}"}}), &[("kms:GranteePrincipal", &["x"])], true),
        row("VARS: policy variables are not substituted here; an Allow that uses one never applies",
            Allow, json!({"StringEquals": {"aws:username": "${aws:username}"}}), &[("aws:username", &["alice"])], false),
        // Numbers.
        row("OPS: \"comparing a key to an integer or decimal value\"",
            Allow, json!({"NumericLessThanEquals": {"kms:ValidTo": "1546257599.0"}}), &[("kms:ValidTo", &["1546257598"])], true),
        row("OPS numeric: a value above the bound",
            Allow, json!({"NumericLessThanEquals": {"kms:ValidTo": "1546257599.0"}}), &[("kms:ValidTo", &["1546257600"])], false),
        row("OPS numeric: inf is not an integer or decimal value (an Allow never applies)",
            Allow, json!({"NumericLessThan": {"kms:RotationPeriodInDays": "inf"}}), &[("kms:RotationPeriodInDays", &["365"])], false),
        row("OPS numeric: NaN is not an integer or decimal value (an Allow never applies)",
            Allow, json!({"NumericNotEquals": {"kms:RotationPeriodInDays": "10"}}), &[("kms:RotationPeriodInDays", &["NaN"])], false),
        row("OPS numeric: a value that is not a number keeps a Deny in force (fail closed)",
            Deny, json!({"NumericGreaterThan": {"kms:RotationPeriodInDays": "100"}}), &[("kms:RotationPeriodInDays", &["inf"])], true),
        // Dates.
        row("OPS: \"You must specify date/time values with one of the W3C implementations of the ISO 8601 date formats or in epoch (UNIX) time.\"",
            Allow, json!({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}), &[("aws:CurrentTime", &["2026-11-24T00:00:00Z"])], true),
        row("OPS dates: epoch seconds compare with ISO 8601 dates",
            Allow, json!({"DateGreaterThan": {"aws:EpochTime": "2030-01-01"}}), &[("aws:EpochTime", &["1767225600"])], false),
        row("OPS dates: a later date",
            Allow, json!({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}), &[("aws:CurrentTime", &["2031-01-01T00:00:00Z"])], false),
        // Bool, IP, ARN.
        row("OPS: \"Boolean conditions ... comparing a key to true or false\" (aws:SecureTransport false → Match)",
            Deny, json!({"Bool": {"aws:SecureTransport": "false"}}), &[("aws:SecureTransport", &["false"])], true),
        row("OPS Bool: aws:SecureTransport true → No match",
            Deny, json!({"Bool": {"aws:SecureTransport": "false"}}), &[("aws:SecureTransport", &["true"])], false),
        row("OPS IP: \"203.0.113.0/24 ... 203.0.113.1 → Match\"",
            Allow, json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}), &[("aws:SourceIp", &["203.0.113.1"])], true),
        row("OPS IP: 198.51.100.1 → No match",
            Allow, json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}), &[("aws:SourceIp", &["198.51.100.1"])], false),
        row("OPS: \"If you specify an IP address without the associated routing prefix, IAM uses the default prefix value of /32.\"",
            Allow, json!({"IpAddress": {"aws:SourceIp": "203.0.113.7"}}), &[("aws:SourceIp", &["203.0.113.8"])], false),
        row("OPS: \"NotIpAddress | All IP addresses except the specified IP address or range\"",
            Deny, json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), &[("aws:SourceIp", &["10.1.2.3"])], false),
        row("OPS ARN: \"With a StringLike condition, the match succeeds.\"",
            Allow, json!({"StringLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}}),
            &[("aws:SourceArn", &["arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"])], true),
        row("OPS ARN: \"With an ArnLike condition, which matches elements between colons, the match fails.\"",
            Allow, json!({"ArnLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}}),
            &[("aws:SourceArn", &["arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"])], false),
        row("OPS: \"The ArnEquals and ArnLike condition operators behave identically.\"",
            Allow, json!({"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/a*"}}), &[("aws:PrincipalArn", &[ALICE])], true),
        row("OPS: \"ArnEquals, ArnLike | Case-sensitive matching of the ARN.\"",
            Allow, json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/Alice"}}), &[("aws:PrincipalArn", &[ALICE])], false),
    ]
}

#[test]
fn every_condition_rule() {
    let mut failures = Vec::new();
    for row in condition_rows() {
        if statement_applies(&row) != row.applies {
            failures.push(format!(
                "{}: {} expected {}",
                row.cites, row.condition, row.applies
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A decision row: who asks, under which key policy and identity policies, and what AWS
/// decides.
struct DecisionRow {
    cites: &'static str,
    caller: Caller<'static>,
    key_policy: serde_json::Value,
    identity: Vec<serde_json::Value>,
    action: &'static str,
    decision: Decision,
}

fn root_all() -> serde_json::Value {
    json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"})
}

fn allow_all() -> serde_json::Value {
    json!({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})
}

fn decision_rows() -> Vec<DecisionRow> {
    let eve = Caller {
        arn: EVE,
        account: OTHER,
        role_arn: None,
    };
    let other_root = Caller {
        arn: "arn:aws:iam::444455556666:root",
        account: OTHER,
        role_arn: None,
    };
    let session = Caller {
        arn: "arn:aws:sts::111122223333:assumed-role/app/s1",
        account: ACCT,
        role_arn: Some("arn:aws:iam::111122223333:role/app"),
    };
    let root = Caller {
        arn: "arn:aws:iam::111122223333:root",
        account: ACCT,
        role_arn: None,
    };
    let row = |cites, caller, key_policy, identity, action, decision| DecisionRow {
        cites,
        caller,
        key_policy,
        identity,
        action,
        decision,
    };
    use Decision::*;
    vec![
        row("KMS-DEF: \"Allows access to the AWS account and enables IAM policies\": an IAM Allow counts",
            alice(), json!([root_all()]), vec![allow_all()], "kms:Encrypt", Allowed),
        row("KMS-DEF: \"Without this permission, IAM policies that allow access to the key are ineffective\"",
            alice(), json!([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob"}, "Action": "kms:*", "Resource": "*"}]),
            vec![allow_all()], "kms:Encrypt", NotAllowed(Missing::ResourcePolicy)),
        row("KMS-KP: \"(You can use an IAM policy to deny a permission to a KMS key without permission from a key policy.)\"",
            alice(), json!([{"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:*", "Resource": "*"}]),
            vec![json!({"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"})], "kms:Encrypt", Denied(DeniedBy::IdentityPolicy)),
        row("KMS-DEF: the account principal delegates to IAM; no IAM Allow → no identity-based policy allows",
            alice(), json!([root_all()]), vec![], "kms:Encrypt", NotAllowed(Missing::IdentityPolicy)),
        row("DENYALLOW: \"If a resource-based policy grants permission directly to the IAM user ... an implicit deny in an identity-based policy ... does not impact the final decision.\"",
            alice(), json!([{"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:Decrypt", "Resource": "*"}]),
            vec![], "kms:Decrypt", Allowed),
        row("DENYALLOW: \"An explicit deny overrides an explicit allow.\"",
            alice(), json!([root_all(), {"Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"}]),
            vec![allow_all()], "kms:Encrypt", Denied(DeniedBy::ResourcePolicy)),
        row("ACT: \"The prefix and the action name are case insensitive.\"",
            alice(), json!([{"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "KMS:ENCRYPT", "Resource": "*"}]),
            vec![], "kms:Encrypt", Allowed),
        row("ACT: wildcards in the Action element",
            alice(), json!([{"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:GenerateDataKey*", "Resource": "*"}]),
            vec![], "kms:GenerateDataKeyWithoutPlaintext", Allowed),
        row("NOTACT: \"all of the applicable actions or services that are not listed are allowed if you use the Allow effect\"",
            alice(), json!([{"Effect": "Allow", "Principal": {"AWS": ALICE}, "NotAction": "kms:ScheduleKeyDeletion", "Resource": "*"}]),
            vec![], "kms:Encrypt", Allowed),
        row("NOTACT: a listed action is not allowed",
            alice(), json!([{"Effect": "Allow", "Principal": {"AWS": ALICE}, "NotAction": "kms:ScheduleKeyDeletion", "Resource": "*"}]),
            vec![], "kms:ScheduleKeyDeletion", NotAllowed(Missing::ResourcePolicy)),
        row("NOTRES: \"explicitly matches all resources ... except for the resources listed\"",
            alice(), json!([root_all()]),
            vec![json!({"Effect": "Allow", "Action": "kms:*", "NotResource": KEY})], "kms:Encrypt", NotAllowed(Missing::IdentityPolicy)),
        row("RES: \"In the Resource element, the IAM user name is case sensitive\" (resource ARNs are compared exactly)",
            alice(), json!([root_all()]),
            vec![json!({"Effect": "Allow", "Action": "kms:*", "Resource": KEY.to_uppercase()})], "kms:Encrypt", NotAllowed(Missing::IdentityPolicy)),
        row("NOTPRIN: \"When you use NotPrincipal in the same policy statement as Effect: Deny, the actions ... are explicitly denied to all principals except for the ones specified.\"",
            alice(), json!([root_all(), {"Effect": "Deny", "NotPrincipal": {"AWS": ["arn:aws:iam::111122223333:user/bob", "arn:aws:iam::111122223333:root"]}, "Action": "kms:*", "Resource": "*"}]),
            vec![allow_all()], "kms:Encrypt", Denied(DeniedBy::ResourcePolicy)),
        row("NOTPRIN: a principal listed with its account is spared by a Deny",
            alice(), json!([root_all(), {"Effect": "Deny", "NotPrincipal": {"AWS": [ALICE, "arn:aws:iam::111122223333:root"]}, "Action": "kms:*", "Resource": "*"}]),
            vec![allow_all()], "kms:Encrypt", Allowed),
        row("NOTPRIN: \"AWS might validate the account first, then the role, and then the assumed-role user\": a user listed without its account is still denied",
            alice(), json!([root_all(), {"Effect": "Deny", "NotPrincipal": {"AWS": [ALICE]}, "Action": "kms:*", "Resource": "*"}]),
            vec![allow_all()], "kms:Encrypt", Denied(DeniedBy::ResourcePolicy)),
        row("NOTPRIN: a role session is spared only when its session, role and account are listed",
            session.clone(), json!([root_all(), {"Effect": "Deny", "NotPrincipal": {"AWS": ["arn:aws:iam::111122223333:role/app", "arn:aws:iam::111122223333:root"]}, "Action": "kms:*", "Resource": "*"}]),
            vec![allow_all()], "kms:Encrypt", Denied(DeniedBy::ResourcePolicy)),
        row("NOTPRIN: an Allow with NotPrincipal is withheld from a caller any of whose identities is listed",
            alice(), json!([{"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]),
            vec![], "kms:Encrypt", NotAllowed(Missing::ResourcePolicy)),
        row("PRIN: \"The account ARN and the shortened account ID behave the same way. Both delegate permissions to the account.\"",
            alice(), json!([{"Effect": "Allow", "Principal": {"AWS": ACCT}, "Action": "kms:*", "Resource": "*"}]),
            vec![], "kms:Encrypt", NotAllowed(Missing::IdentityPolicy)),
        row("KMS-DEF: the account's root needs no IAM policy in its own account",
            root.clone(), json!([root_all()]), vec![], "kms:ScheduleKeyDeletion", Allowed),
        row("DENYALLOW: \"You can specify the role ARN in the Principal element ... the principal that makes the request is the IAM role session.\"",
            session.clone(), json!([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/app"}, "Action": "kms:Decrypt", "Resource": "*"}]),
            vec![], "kms:Decrypt", Allowed),
        row("KMS-XACCT: \"Cross-account access requires permission in the key policy of the KMS key and in an IAM policy in the external user's account.\"",
            eve.clone(), json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "kms:Decrypt", "Resource": "*"}]),
            vec![allow_all()], "kms:Decrypt", Allowed),
        row("KMS-XACCT: \"You must also add IAM policies in the external account ... even when users and roles are specified in the key policy.\"",
            eve.clone(), json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": EVE}, "Action": "kms:Decrypt", "Resource": "*"}]),
            vec![], "kms:Decrypt", NotAllowed(Missing::IdentityPolicy)),
        row("KMS-XACCT: \"If the IAM policy lists actions that are not specified in the key policy, those permissions are not effective.\"",
            eve.clone(), json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "kms:Decrypt", "Resource": "*"}]),
            vec![allow_all()], "kms:Encrypt", NotAllowed(Missing::ResourcePolicy)),
        row("KMS-XACCT: the key policy of one account does not let another account in by naming itself",
            eve.clone(), json!([root_all()]), vec![allow_all()], "kms:Decrypt", NotAllowed(Missing::ResourcePolicy)),
        row("KMS-XACCT: the other account's root needs no IAM policy of its own",
            other_root, json!([{"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "kms:Decrypt", "Resource": "*"}]),
            vec![], "kms:Decrypt", Allowed),
        row("PRIN: \"Principal\": \"*\" with Allow: principals in other accounts \"must also have identity-based permissions in their account\"",
            eve, json!([{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]),
            vec![], "kms:Decrypt", NotAllowed(Missing::IdentityPolicy)),
    ]
}

#[test]
fn every_decision_rule() {
    let mut failures = Vec::new();
    for row in decision_rows() {
        let policy = key_policy(row.key_policy.clone());
        let identities: Vec<PolicyDocument> =
            row.identity.iter().map(|s| identity(json!([s]))).collect();
        let ctx = RequestContext::new(row.action, KEY);
        let got = decide(
            Resource::WithPolicy {
                policy: &policy,
                account: ACCT,
            },
            &row.caller,
            &identities,
            &ctx,
        );
        if got != row.decision {
            failures.push(format!(
                "{}: got {got:?}, want {:?}",
                row.cites, row.decision
            ));
        }
        // The explanation is the same evaluation, step by step.
        let explained = explain(
            Resource::WithPolicy {
                policy: &policy,
                account: ACCT,
            },
            &row.caller,
            &identities,
            &ctx,
        );
        assert_eq!(explained.decision, got, "{}", row.cites);
        assert_eq!(explained.policies.len(), 1 + identities.len());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Actions on `*` and resources without a policy: the caller's identity policies decide.
#[test]
fn identity_only_rules() {
    let ctx = RequestContext::new("kms:CreateKey", "*");
    let deny = identity(json!([{"Effect": "Deny", "Action": "kms:CreateKey", "Resource": "*"}]));
    let allow = identity(json!([allow_all()]));
    let root = Caller {
        arn: "arn:aws:iam::111122223333:root",
        account: ACCT,
        role_arn: None,
    };
    // DENYALLOW: "By default, all requests are implicitly denied with the exception of the
    // AWS account root user, which has full access."
    assert_eq!(
        decide(Resource::IdentityOnly, &root, &[], &ctx),
        Decision::Allowed
    );
    assert_eq!(
        decide(Resource::IdentityOnly, &alice(), &[], &ctx),
        Decision::NotAllowed(Missing::IdentityPolicy)
    );
    assert_eq!(
        decide(Resource::IdentityOnly, &alice(), &[allow.clone()], &ctx),
        Decision::Allowed
    );
    assert_eq!(
        decide(Resource::IdentityOnly, &alice(), &[allow, deny], &ctx),
        Decision::Denied(DeniedBy::IdentityPolicy)
    );
}

/// AWS's AccessDenied reasons, one per decision.
#[test]
fn denial_reasons_read_as_aws_writes_them() {
    assert_eq!(
        Decision::NotAllowed(Missing::ResourcePolicy).reason("kms:Decrypt"),
        "because no resource-based policy allows the kms:Decrypt action"
    );
    assert_eq!(
        Decision::NotAllowed(Missing::IdentityPolicy).reason("kms:Decrypt"),
        "because no identity-based policy allows the kms:Decrypt action"
    );
    assert_eq!(
        Decision::Denied(DeniedBy::ResourcePolicy).reason("kms:Decrypt"),
        "with an explicit deny in a resource-based policy"
    );
    assert_eq!(
        Decision::Denied(DeniedBy::IdentityPolicy).reason("kms:Decrypt"),
        "with an explicit deny in an identity-based policy"
    );
}
