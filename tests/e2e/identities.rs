//! IAM users from the config file and from `ferrokms admin`, authorized by their identity
//! policies and by key policies, through the real server.

use std::time::SystemTime;

use crate::harness::{code, message, Server, REGION};
use crate::{decrypt, encrypt, new_key};

pub const ALICE_KEY: &str = "AKIAALICE00000000001";
pub const ALICE_SECRET: &str = "alice-secret-alice-secret-alice-secret-0";
pub const BOB_KEY: &str = "AKIABOB0000000000001";
pub const BOB_SECRET: &str = "bob-secret-bob-secret-bob-secret-bob-sec";

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("ferrokms.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[users]]
name = "alice"
access_keys = [{{ id = "{ALICE_KEY}", secret = "{ALICE_SECRET}" }}]
[users.policies]
kms-use = '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["kms:CreateKey","kms:Encrypt","kms:Decrypt","kms:DescribeKey","kms:ListKeys"],"Resource":"*"}}]}}'
assume-app = '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::111122223333:role/app"}}]}}'

[[users]]
name = "bob"
access_keys = [{{ id = "{BOB_KEY}", secret = "{BOB_SECRET}" }}]

[[roles]]
name = "app"
[roles.policies]
app-crypto = '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey"],"Resource":"*"}}]}}'

[[roles]]
name = "bobs-role"
trust_policy = '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:user/bob"}},"Action":"sts:AssumeRole"}}]}}'
"#
        ),
    )
    .unwrap();
    path
}

pub fn start_with_config(temp: &tempfile::TempDir, extra: &[&str]) -> Server {
    let conf = config(temp.path());
    let data = temp.path().join("data");
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        conf.to_str().unwrap(),
    ];
    args.extend(extra);
    Server::start_with_args(&args, &data)
}

#[tokio::test]
async fn config_users_act_within_their_policies() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_config(&temp, &[]);
    let alice = server.client_with(REGION, ALICE_KEY, ALICE_SECRET);
    let bob = server.client_with(REGION, BOB_KEY, BOB_SECRET);

    let (id, arn) = new_key(&alice).await;
    let ct = encrypt(&alice, &id, "alice's").await.unwrap();
    let back = decrypt(&alice, ct.ciphertext_blob().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"alice's");
    let err = alice
        .schedule_key_deletion()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert_eq!(
        message(&err),
        format!("User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:ScheduleKeyDeletion on resource: {arn} because no identity-based policy allows the kms:ScheduleKeyDeletion action")
    );

    let err = bob.create_key().send().await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert_eq!(
        message(&err),
        "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action"
    );
    let err = encrypt(&bob, &id, "x").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");

    // A key policy that names bob lets him in without any IAM policy.
    let admin = server.client();
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [
        crate::root_allows_all("111122223333"),
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob"}, "Action": "kms:Encrypt", "Resource": "*"}
    ]});
    admin
        .put_key_policy()
        .key_id(&id)
        .policy(doc.to_string())
        .send()
        .await
        .unwrap();
    encrypt(&bob, &id, "bob's").await.unwrap();
    let err = decrypt(&bob, ct.ciphertext_blob().unwrap().clone())
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");

    let who = server.signed_with(
        ALICE_KEY,
        ALICE_SECRET,
        "sts",
        None,
        b"Action=GetCallerIdentity&Version=2011-06-15",
        SystemTime::now(),
    );
    assert!(
        who.body
            .contains("<Arn>arn:aws:iam::111122223333:user/alice</Arn>"),
        "{}",
        who.body
    );
    let wrong = server.client_with(REGION, ALICE_KEY, "not-alice's-secret");
    assert_eq!(
        code(&wrong.list_keys().send().await.unwrap_err()),
        "InvalidSignatureException"
    );

    // Applying the same config again on restart changes nothing and keeps everything.
    server.stop();
    let again = start_with_config(&temp, &[]);
    let alice = again.client_with(REGION, ALICE_KEY, ALICE_SECRET);
    encrypt(&alice, &id, "after restart").await.unwrap();
}

fn admin(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    crate::harness::ferrokms_command(data_dir)
        .args(["admin", "--data-dir", data_dir.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn admin_commands_manage_users_while_the_server_runs() {
    let server = Server::start();
    let dir = server.data_dir.clone();
    let out = admin(&dir, &["create-user", "--user", "carol"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "arn:aws:iam::111122223333:user/carol"
    );
    let out = admin(&dir, &["create-access-key", "--user", "carol"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap()
            .to_owned()
    };
    let (ak, sk) = (value("AWS_ACCESS_KEY_ID"), value("AWS_SECRET_ACCESS_KEY"));
    let carol = server.client_with(REGION, &ak, &sk);
    let err = carol.list_keys().send().await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException", "no policy yet");

    let bad = admin(
        &dir,
        &[
            "put-user-policy",
            "--user",
            "carol",
            "--policy-name",
            "p",
            "--policy-document",
            "{nope",
        ],
    );
    assert!(!bad.status.success());
    let out = admin(
        &dir,
        &[
            "put-user-policy",
            "--user",
            "carol",
            "--policy-name",
            "kms-read",
            "--policy-document",
            r#"{"Statement":[{"Effect":"Allow","Action":"kms:List*","Resource":"*"}]}"#,
        ],
    );
    assert!(out.status.success(), "{out:?}");
    carol.list_keys().send().await.unwrap();
    let err = carol.create_key().send().await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");

    let listed = admin(&dir, &["list-users"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("arn:aws:iam::111122223333:user/admin\t"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("arn:aws:iam::111122223333:user/carol\t{ak}")),
        "{listed}"
    );

    let out = admin(
        &dir,
        &[
            "delete-user-policy",
            "--user",
            "carol",
            "--policy-name",
            "kms-read",
        ],
    );
    assert!(out.status.success());
    assert_eq!(
        code(&carol.list_keys().send().await.unwrap_err()),
        "AccessDeniedException"
    );
    let out = admin(&dir, &["delete-access-key", "--access-key-id", &ak]);
    assert!(out.status.success());
    let err = carol.list_keys().send().await.unwrap_err();
    assert_eq!(code(&err), "UnrecognizedClientException");
    assert!(!admin(&dir, &["delete-access-key", "--access-key-id", &ak])
        .status
        .success());
}

#[tokio::test]
async fn dev_mode_maps_configured_keys_to_their_users_and_others_to_root() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_config(&temp, &["--dev"]);
    // Signatures are not checked in dev mode, but a configured key still acts as its user.
    let bob = server.client_with(REGION, BOB_KEY, "anything");
    let err = bob.create_key().send().await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    let root = server.client_with(REGION, "test", "test");
    let (_, arn) = new_key(&root).await;
    assert!(arn.contains(":000000000000:key/"));
}
