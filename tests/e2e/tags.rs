use aws_sdk_kms::types::Tag;

use crate::harness::{code, message, Server};
use crate::new_key;

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().tag_key(k).tag_value(v).build().unwrap()
}

async fn listed(kms: &aws_sdk_kms::Client, id: &str) -> Vec<(String, String)> {
    kms.list_resource_tags()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn tag_overwrite_untag_and_list() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = new_key(&kms).await;
    kms.tag_resource()
        .key_id(&id)
        .tags(tag("b", "1"))
        .tags(tag("a", "1"))
        .send()
        .await
        .unwrap();
    kms.tag_resource()
        .key_id(&arn)
        .tags(tag("a", "2"))
        .tags(tag("empty", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed(&kms, &id).await,
        pairs(&[("a", "2"), ("b", "1"), ("empty", "")])
    );
    kms.untag_resource()
        .key_id(&id)
        .tag_keys("a")
        .tag_keys("never-there")
        .send()
        .await
        .unwrap();
    assert_eq!(listed(&kms, &id).await, pairs(&[("b", "1"), ("empty", "")]));
    let page = kms
        .list_resource_tags()
        .key_id(&id)
        .limit(1)
        .send()
        .await
        .unwrap();
    assert!(page.truncated());
    let rest = kms
        .list_resource_tags()
        .key_id(&id)
        .marker(page.next_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.tags().len(), 1);
    assert_eq!(rest.tags()[0].tag_key(), "empty");
    assert!(!rest.truncated());
}

#[tokio::test]
async fn tag_rules_follow_aws_and_refusals_change_nothing() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = new_key(&kms).await;
    kms.tag_resource()
        .key_id(&id)
        .tags(tag("keep", "1"))
        .send()
        .await
        .unwrap();
    let err = kms
        .tag_resource()
        .key_id(&id)
        .tags(tag("x", "1"))
        .tags(tag("x", "2"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        ("TagException".into(), "Duplicate tag keys".into())
    );
    let err = kms
        .tag_resource()
        .key_id(&id)
        .tags(tag("aws:k", "v"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(message(&err), "Tags beginning with aws: are reserved");
    let fifty: Vec<Tag> = (0..50).map(|i| tag(&format!("t{i}"), "v")).collect();
    let err = kms
        .tag_resource()
        .key_id(&id)
        .set_tags(Some(fifty))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        ("TagException".into(), "Too many tags".into())
    );
    let err = kms
        .tag_resource()
        .key_id(&id)
        .tags(tag("v", &"x".repeat(257)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert!(message(&err).contains("at 'tags.1.member.tagValue'"));
    assert_eq!(listed(&kms, &id).await, pairs(&[("keep", "1")]));

    kms.schedule_key_deletion()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    let err = kms
        .tag_resource()
        .key_id(&id)
        .tags(tag("late", "1"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "KMSInvalidStateException".into(),
            format!("{arn} is pending deletion.")
        )
    );
    let err = kms
        .untag_resource()
        .key_id(&id)
        .tag_keys("keep")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "KMSInvalidStateException");
    assert_eq!(listed(&kms, &id).await, pairs(&[("keep", "1")]));
}
