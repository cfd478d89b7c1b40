//! Resource tags and the rules AWS applies to them.

use serde::{Deserialize, Serialize};

use crate::KmsError;

/// Most tags one key may carry.
pub const MAX_TAGS_PER_KEY: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Checks a set of tags to add: no duplicate keys, none in the reserved `aws:` namespace, at
/// most `max_tags` (the tags-per-key quota, AWS's `MAX_TAGS_PER_KEY` unless configured).
/// Length limits are the model's and are checked where the request is read.
pub fn check_new_tags(tags: &[Tag], max_tags: usize) -> Result<(), KmsError> {
    let mut seen = std::collections::BTreeSet::new();
    for tag in tags {
        if !seen.insert(tag.key.as_str()) {
            return Err(KmsError::duplicate_tag_keys());
        }
        // Reserved in any case: `AWS:x` and `Aws:x` too.
        if tag
            .key
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
        {
            return Err(KmsError::reserved_tag_key());
        }
    }
    if tags.len() > max_tags {
        return Err(KmsError::too_many_tags());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str) -> Tag {
        Tag {
            key: k.into(),
            value: String::new(),
        }
    }

    #[test]
    fn rejects_duplicates_reserved_and_too_many() {
        assert!(check_new_tags(&[tag("a"), tag("b")], MAX_TAGS_PER_KEY).is_ok());
        assert_eq!(
            check_new_tags(&[tag("a"), tag("a")], MAX_TAGS_PER_KEY),
            Err(KmsError::duplicate_tag_keys())
        );
        assert_eq!(
            check_new_tags(&[tag("aws:x")], MAX_TAGS_PER_KEY),
            Err(KmsError::reserved_tag_key())
        );
        for reserved in ["AWS:x", "Aws:x", "aWs:"] {
            assert_eq!(
                check_new_tags(&[tag(reserved)], MAX_TAGS_PER_KEY),
                Err(KmsError::reserved_tag_key()),
                "{reserved}"
            );
        }
        assert!(check_new_tags(&[tag("aws"), tag("awsx:y")], MAX_TAGS_PER_KEY).is_ok());
        let many: Vec<Tag> = (0..51).map(|i| tag(&i.to_string())).collect();
        assert_eq!(
            check_new_tags(&many, MAX_TAGS_PER_KEY),
            Err(KmsError::too_many_tags())
        );
    }
}
