use crate::harness::{code, message, Server};
use crate::{encrypt, new_key};

#[tokio::test]
async fn create_list_update_delete() {
    let server = Server::start();
    let kms = server.client();
    let (a, a_arn) = new_key(&kms).await;
    let (b, _) = new_key(&kms).await;
    kms.create_alias()
        .alias_name("alias/app")
        .target_key_id(&a_arn)
        .send()
        .await
        .unwrap();
    kms.create_alias()
        .alias_name("alias/other")
        .target_key_id(&b)
        .send()
        .await
        .unwrap();

    let all = kms.list_aliases().send().await.unwrap();
    // The predefined AWS managed aliases come first, without a target, as in a fresh AWS
    // account.
    let (predefined, mine): (Vec<_>, Vec<_>) = all
        .aliases()
        .iter()
        .partition(|x| x.alias_name().is_some_and(|n| n.starts_with("alias/aws/")));
    assert!(predefined.iter().all(|a| a.target_key_id().is_none()
        && a.creation_date().is_none()
        && a.alias_arn()
            == Some(&format!(
                "arn:aws:kms:us-east-1:111122223333:{}",
                a.alias_name().unwrap()
            ))));
    assert!(predefined
        .iter()
        .any(|a| a.alias_name() == Some("alias/aws/s3")));
    let names: Vec<&str> = mine.iter().filter_map(|x| x.alias_name()).collect();
    assert_eq!(names, ["alias/app", "alias/other"]);
    let app = mine[0];
    assert_eq!(
        app.alias_arn(),
        Some("arn:aws:kms:us-east-1:111122223333:alias/app")
    );
    assert_eq!(app.target_key_id(), Some(a.as_str()));
    assert!(app.creation_date().is_some() && app.last_updated_date().is_some());
    assert!(!all.truncated());

    // Filtered by key, only that key's aliases.
    let of_b = kms.list_aliases().key_id(&b).send().await.unwrap();
    let names: Vec<&str> = of_b
        .aliases()
        .iter()
        .filter_map(|x| x.alias_name())
        .collect();
    assert_eq!(names, ["alias/other"]);

    kms.update_alias()
        .alias_name("alias/app")
        .target_key_id(&b)
        .send()
        .await
        .unwrap();
    let enc = encrypt(&kms, "alias/app", "x").await.unwrap();
    assert!(enc.key_id().unwrap().ends_with(&b));

    kms.delete_alias()
        .alias_name("alias/app")
        .send()
        .await
        .unwrap();
    let err = kms
        .delete_alias()
        .alias_name("alias/app")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "NotFoundException".into(),
            "Alias arn:aws:kms:us-east-1:111122223333:alias/app is not found.".into()
        )
    );
    let err = encrypt(&kms, "alias/app", "x").await.unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
    let err = kms
        .update_alias()
        .alias_name("alias/app")
        .target_key_id(&a)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
}

#[tokio::test]
async fn names_and_targets_are_checked_like_aws() {
    let server = Server::start();
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    kms.create_alias()
        .alias_name("alias/taken")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let create = |name: &str, target: &str| {
        kms.create_alias()
            .alias_name(name)
            .target_key_id(target)
            .send()
    };
    let err = create("alias/taken", &id).await.unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "AlreadyExistsException".into(),
            "An alias with the name arn:aws:kms:us-east-1:111122223333:alias/taken already exists"
                .into()
        )
    );
    let err = create("alias/aws/mine", &id).await.unwrap_err();
    assert_eq!(code(&err), "InvalidAliasNameException");
    let err = create("no-prefix", &id).await.unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "ValidationException".into(),
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into()
        )
    );
    let err = create("alias/with space", &id).await.unwrap_err();
    assert_eq!(
        message(&err),
        "1 validation error detected: Value 'alias/with space' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
    );
    let err = create("alias/to-alias", "alias/taken").await.unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "ValidationException".into(),
            "Aliases must refer to keys. Not aliases".into()
        )
    );
    let missing = "0000aaaa-0000-4000-8000-000000000000";
    let err = create("alias/to-missing", missing).await.unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "NotFoundException".into(),
            format!("Key 'arn:aws:kms:us-east-1:111122223333:key/{missing}' does not exist")
        )
    );
    let (doomed, doomed_arn) = new_key(&kms).await;
    kms.schedule_key_deletion()
        .key_id(&doomed)
        .send()
        .await
        .unwrap();
    let err = create("alias/to-doomed", &doomed).await.unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "KMSInvalidStateException".into(),
            format!("{doomed_arn} is pending deletion.")
        )
    );
    let names: Vec<String> = kms
        .list_aliases()
        .send()
        .await
        .unwrap()
        .aliases()
        .iter()
        .filter(|a| a.target_key_id().is_some())
        .filter_map(|a| a.alias_name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["alias/taken"], "refused requests created nothing");
}

#[tokio::test]
async fn at_most_fifty_aliases_per_key_and_pagination() {
    let server = Server::start();
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    for i in 0..50 {
        kms.create_alias()
            .alias_name(format!("alias/n{i:02}"))
            .target_key_id(&id)
            .send()
            .await
            .unwrap();
    }
    let err = kms
        .create_alias()
        .alias_name("alias/n50")
        .target_key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "LimitExceededException".into(),
            "Aliases per key quota for this account in this region is 50, current usage is 51."
                .into()
        )
    );
    let mut names = Vec::new();
    let mut marker = None;
    loop {
        let page = kms
            .list_aliases()
            .limit(20)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        names.extend(
            page.aliases()
                .iter()
                .filter_map(|a| a.alias_name().map(str::to_owned)),
        );
        if !page.truncated() {
            break;
        }
        marker = page.next_marker().map(str::to_owned);
    }
    // The pages merge the predefined names with the stored ones: in order, each once.
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted);
    assert!(names.contains(&"alias/aws/s3".to_owned()));
    let mine: Vec<String> = names
        .into_iter()
        .filter(|n| !n.starts_with("alias/aws/"))
        .collect();
    let expected: Vec<String> = (0..50).map(|i| format!("alias/n{i:02}")).collect();
    assert_eq!(mine, expected);
}
