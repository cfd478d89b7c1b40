//! The key policy parser and evaluator: any document either fails to parse or evaluates
//! to an answer for a key policy and for an identity policy.
#![no_main]
use ferrokms_core::policy::{
    decide, explain, Caller, PolicyDocument, PolicyKind, RequestContext, Resource,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key_policy = PolicyDocument::parse(text, PolicyKind::Key);
    let identity = PolicyDocument::parse(text, PolicyKind::Identity);
    let mut ctx = RequestContext::new(
        "Encrypt",
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    );
    ctx.set("kms:EncryptionContext:purpose", vec!["fuzz".into()])
        .set("aws:SourceIp", vec!["10.0.0.1".into()])
        .set("kms:KeySpec", vec!["SYMMETRIC_DEFAULT".into()]);
    let caller = Caller {
        arn: "arn:aws:iam::111122223333:user/fuzz",
        account: "111122223333",
        role_arn: None,
    };
    if let Ok(policy) = key_policy {
        let _ = policy.check_new_policy();
        let identities: Vec<PolicyDocument> = identity.into_iter().collect();
        let resource = Resource::WithPolicy {
            policy: &policy,
            account: "111122223333",
        };
        let decision = decide(resource, &caller, &identities, &ctx);
        // The explanation is the same evaluation.
        assert_eq!(explain(resource, &caller, &identities, &ctx).decision, decision);
        let _ = decide(Resource::IdentityOnly, &caller, &identities, &ctx);
    }
});
