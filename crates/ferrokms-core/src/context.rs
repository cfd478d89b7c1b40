//! Encryption context: public, authenticated metadata bound to a ciphertext.

use std::collections::BTreeMap;

/// Largest encryption context accepted, counted as the UTF-8 bytes of all keys and values.
/// AWS publishes no figure; this bound keeps requests and audit records small.
pub const MAX_CONTEXT_BYTES: usize = 8192;

/// A string-to-string map whose canonical encoding is independent of the order the caller
/// wrote it in and unambiguous (`{"ab":"c"}` and `{"a":"bc"}` encode differently).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    pub fn new(entries: BTreeMap<String, String>) -> Self {
        EncryptionContext(entries)
    }

    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn size_bytes(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Entries sorted by key bytes, each key and value prefixed by its length (u32 BE).
    /// An empty context encodes as nothing, the same as an absent one.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_bytes() + 8 * self.0.len());
        for (k, v) in &self.0 {
            for part in [k, v] {
                // The size bound above keeps every length far below u32::MAX.
                out.extend_from_slice(&(part.len() as u32).to_be_bytes());
                out.extend_from_slice(part.as_bytes());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        EncryptionContext::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn encoding_is_order_independent_and_unambiguous() {
        assert_eq!(
            ctx(&[("a", "1"), ("b", "2")]).canonical_bytes(),
            ctx(&[("b", "2"), ("a", "1")]).canonical_bytes()
        );
        assert_ne!(
            ctx(&[("ab", "c")]).canonical_bytes(),
            ctx(&[("a", "bc")]).canonical_bytes()
        );
        assert!(ctx(&[]).canonical_bytes().is_empty());
    }
}
