//! Unwrapped key material, kept so that a hot key is not read and unwrapped on every call.
//!
//! A material version never changes once made, so an entry can never be stale: what may
//! change (the key's state, its policy, whether it still exists) is read from the store on
//! every call before its material is used. Entries are dropped, and so wiped, when their key
//! is deleted or loses imported material on this node, and when the cache is full; other
//! nodes drop theirs when full. The cache is bounded in entries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferrokms_core::ids::KeyArn;
use ferrokms_core::material::{KeyMaterial, MaterialId};

/// Most material versions held at once.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct MaterialCache {
    entries: Mutex<HashMap<(KeyArn, MaterialId), Arc<KeyMaterial>>>,
}

impl MaterialCache {
    pub fn get(&self, key: &KeyArn, material: &MaterialId) -> Option<Arc<KeyMaterial>> {
        let entries = self.entries.lock().ok()?;
        entries.get(&(key.clone(), *material)).cloned()
    }

    pub fn insert(&self, key: &KeyArn, material: MaterialId, value: Arc<KeyMaterial>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                // Dropping everything keeps the cache simple and bounded; hot keys come back
                // on their next call.
                entries.clear();
            }
            entries.insert((key.clone(), material), value);
        }
    }

    /// Forgets every version of a key's material.
    pub fn forget_key(&self, key: &KeyArn) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(k, _), _| k != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_per_key_and_version_and_go_with_their_key() {
        let cache = MaterialCache::default();
        let arn = |id: &str| KeyArn {
            region: ferrokms_core::ids::Region::parse("us-east-1").unwrap(),
            account: ferrokms_core::ids::AccountId::parse("111122223333").unwrap(),
            key_id: ferrokms_core::ids::KeyId::parse(id).unwrap(),
        };
        let (a, b) = (
            arn("1234abcd-12ab-34cd-56ef-1234567890ab"),
            arn("0987dcba-09fe-87dc-65ba-ab0987654321"),
        );
        let (v1, v2) = (
            MaterialId::generate().unwrap(),
            MaterialId::generate().unwrap(),
        );
        let material = || Arc::new(KeyMaterial::generate_symmetric().unwrap());
        cache.insert(&a, v1, material());
        cache.insert(&b, v1, material());
        assert!(cache.get(&a, &v1).is_some());
        assert!(cache.get(&a, &v2).is_none());
        cache.forget_key(&a);
        assert!(cache.get(&a, &v1).is_none());
        assert!(cache.get(&b, &v1).is_some());
    }
}
