//! The materials of a key of Origin EXTERNAL, as AWS has had them since 2025: a symmetric
//! encryption key may hold several imported materials (one current, the ones it rotated
//! from, and at most one waiting to become current by RotateKeyOnDemand); an asymmetric or
//! HMAC key holds one, for good. Each material has its own expiry, and is "associated"
//! with the key once imported: deleting or expiring it leaves the association, and the key
//! waits (PendingImport) until that same material is imported again.

use serde::{Deserialize, Serialize};

use crate::key::{KeyMetadata, KeySpec, KeyState, Millis};
use crate::material::MaterialId;
use crate::KmsError;

pub const EXPIRES: &str = "KEY_MATERIAL_EXPIRES";
pub const DOES_NOT_EXPIRE: &str = "KEY_MATERIAL_DOES_NOT_EXPIRE";

/// A material's place among its key's materials (the model's KeyMaterialState, less
/// PENDING_MULTI_REGION_IMPORT_AND_ROTATION: ferrokms does not rotate the imported material
/// of multi-Region keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaterialState {
    #[serde(rename = "CURRENT")]
    Current,
    #[serde(rename = "NON_CURRENT")]
    NonCurrent,
    #[serde(rename = "PENDING_ROTATION")]
    PendingRotation,
}

impl MaterialState {
    pub fn as_str(self) -> &'static str {
        match self {
            MaterialState::Current => "CURRENT",
            MaterialState::NonCurrent => "NON_CURRENT",
            MaterialState::PendingRotation => "PENDING_ROTATION",
        }
    }
}

/// ImportKeyMaterial's ImportType.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportType {
    NewKeyMaterial,
    ExistingKeyMaterial,
}

impl ImportType {
    pub const ALL: &'static [&'static str] = &["NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL"];
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "NEW_KEY_MATERIAL" => Some(ImportType::NewKeyMaterial),
            "EXISTING_KEY_MATERIAL" => Some(ImportType::ExistingKeyMaterial),
            _ => None,
        }
    }
}

/// One material associated with an EXTERNAL key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedMaterial {
    pub id: MaterialId,
    pub state: MaterialState,
    /// Whether the material is in the store now (ImportState IMPORTED); false once deleted
    /// or expired, until it is imported again.
    pub imported: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// While imported: KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Millis>,
    /// When RotateKeyOnDemand made it current; None for the key's first material.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<Millis>,
}

impl ImportedMaterial {
    /// Current and non-current materials belong to the key for good; a pending one can be
    /// deleted and replaced.
    pub fn is_permanent(&self) -> bool {
        self.state != MaterialState::PendingRotation
    }
}

/// The materials of an EXTERNAL key, in the order they were first imported.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ImportStateWire", into = "ImportStateWire")]
pub struct ImportState {
    pub materials: Vec<ImportedMaterial>,
}

/// How ImportState is stored, reading also the one-material form of earlier versions.
#[derive(Clone, Default, Serialize, Deserialize)]
struct ImportStateWire {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    materials: Vec<ImportedMaterial>,
    // The current material in the one-material form, written too: a binary of an earlier
    // version reading this key still knows which material it must insist on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    material: Option<MaterialId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expiration_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_to: Option<Millis>,
}

impl From<ImportStateWire> for ImportState {
    fn from(w: ImportStateWire) -> Self {
        let mut materials = w.materials;
        if let (true, Some(id)) = (materials.is_empty(), w.material) {
            materials.push(ImportedMaterial {
                id,
                state: MaterialState::Current,
                imported: w.expiration_model.is_some(),
                description: None,
                expiration_model: w.expiration_model,
                valid_to: w.valid_to,
                rotated_at: None,
            });
        }
        ImportState { materials }
    }
}

impl From<ImportState> for ImportStateWire {
    fn from(s: ImportState) -> Self {
        let current = s.current().cloned();
        ImportStateWire {
            material: current.as_ref().map(|c| c.id),
            expiration_model: current.as_ref().and_then(|c| c.expiration_model.clone()),
            valid_to: current.and_then(|c| c.valid_to),
            materials: s.materials,
        }
    }
}

impl ImportState {
    pub fn get(&self, id: &MaterialId) -> Option<&ImportedMaterial> {
        self.materials.iter().find(|m| &m.id == id)
    }

    pub fn current(&self) -> Option<&ImportedMaterial> {
        self.materials
            .iter()
            .find(|m| m.state == MaterialState::Current)
    }

    pub fn pending(&self) -> Option<&ImportedMaterial> {
        self.materials
            .iter()
            .find(|m| m.state == MaterialState::PendingRotation)
    }

    /// Whether every material that belongs to the key for good is in the store: only then
    /// can the key be used (AWS: "You will need to import all of the key materials
    /// associated with the KMS key to change its state to Enabled").
    pub fn complete(&self) -> bool {
        self.current().is_some()
            && self
                .materials
                .iter()
                .filter(|m| m.is_permanent())
                .all(|m| m.imported)
    }

    /// KeyMetadata's ValidTo: "the earliest time at which any imported key material
    /// permanently associated with this KMS key expires".
    pub fn valid_to(&self) -> Option<Millis> {
        self.materials
            .iter()
            .filter(|m| m.is_permanent() && m.imported)
            .filter_map(|m| m.valid_to)
            .min()
    }

    /// When the next imported material (pending ones too) expires.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.materials
            .iter()
            .filter(|m| m.imported)
            .filter_map(|m| m.valid_to)
            .min()
    }

    /// The same materials, none of them imported: what a new replica of the key holds
    /// until each is imported into it. A material still pending rotation is not the
    /// replica's.
    pub fn awaiting_import(&self) -> ImportState {
        ImportState {
            materials: self
                .materials
                .iter()
                .filter(|m| m.is_permanent())
                .map(|m| ImportedMaterial {
                    imported: false,
                    expiration_model: None,
                    valid_to: None,
                    ..m.clone()
                })
                .collect(),
        }
    }

    /// The materials whose ValidTo has come.
    pub fn expired(&self, now: Millis) -> Vec<MaterialId> {
        self.materials
            .iter()
            .filter(|m| m.imported && m.valid_to.is_some_and(|v| v <= now))
            .map(|m| m.id)
            .collect()
    }
}

/// What ImportKeyMaterial asks for, its input already checked.
pub struct ImportRequest<'a> {
    /// The id of the unwrapped material, as derived for this key.
    pub material: MaterialId,
    pub import_type: Option<ImportType>,
    /// KeyMaterialId, which the material must match.
    pub claimed: Option<MaterialId>,
    pub description: Option<&'a str>,
    pub expiration_model: &'a str,
    pub valid_to: Option<Millis>,
}

impl KeyMetadata {
    /// Import operations are for EXTERNAL keys that are not pending deletion.
    pub fn check_importable(&self) -> Result<(), KmsError> {
        self.check_external()?;
        self.check_not_pending_deletion()
    }

    fn check_external(&self) -> Result<(), KmsError> {
        if self.origin != crate::key::Origin::External {
            return Err(self.origin_not_valid());
        }
        Ok(())
    }

    /// Whether a material of this key may be used: a key of imported material uses only
    /// material that is imported now. (The key's state says so too; this holds even where
    /// a node's cache still has material that another node deleted.)
    pub fn material_usable(&self, id: &MaterialId) -> bool {
        self.origin != crate::key::Origin::External
            || self.import.get(id).is_some_and(|m| m.imported)
    }

    /// Whether this key may hold several materials: symmetric encryption keys, but not
    /// multi-Region ones (whose replicas ferrokms cannot yet make import them in step).
    fn holds_several_materials(&self) -> bool {
        self.key_spec == KeySpec::SymmetricDefault && !self.is_multi_region()
    }

    /// Takes imported material, as AWS documents ImportKeyMaterial: without ImportType, the
    /// first import is NEW_KEY_MATERIAL and later ones EXISTING_KEY_MATERIAL; new material
    /// after the first waits for RotateKeyOnDemand; existing material must be material the
    /// key already has.
    pub fn import_material(&mut self, request: &ImportRequest<'_>) -> Result<(), KmsError> {
        self.check_importable()?;
        let id = request.material;
        if self.key_spec != KeySpec::SymmetricDefault
            && (request.import_type.is_some()
                || request.claimed.is_some()
                || request.description.is_some())
        {
            return Err(KmsError::import_options_symmetric_only());
        }
        let import_type = request
            .import_type
            .unwrap_or(if self.import.materials.is_empty() {
                ImportType::NewKeyMaterial
            } else {
                ImportType::ExistingKeyMaterial
            });
        let imported = ImportedMaterial {
            id,
            state: MaterialState::Current,
            imported: true,
            description: request.description.map(str::to_owned),
            expiration_model: Some(request.expiration_model.to_owned()),
            valid_to: request.valid_to,
            rotated_at: None,
        };
        match import_type {
            ImportType::NewKeyMaterial => {
                // "You cannot specify a key material ID with ImportType set to
                // NEW_KEY_MATERIAL", which a first import is when ImportType is omitted.
                if request.claimed.is_some() {
                    return Err(KmsError::material_id_with_new_material());
                }
                if self.import.get(&id).is_some() {
                    return Err(KmsError::new_material_already_associated());
                }
                if self.import.materials.is_empty() {
                    self.import.materials.push(imported);
                    self.current_material = id;
                } else {
                    if !self.holds_several_materials() {
                        return Err(if self.key_spec == KeySpec::SymmetricDefault {
                            KmsError::several_materials_multi_region()
                        } else {
                            KmsError::key_material_mismatch()
                        });
                    }
                    if let Some(pending) = self.import.pending() {
                        return Err(KmsError::material_pending_rotation(
                            id,
                            self.id(),
                            pending.id,
                        ));
                    }
                    self.import.materials.push(ImportedMaterial {
                        state: MaterialState::PendingRotation,
                        ..imported
                    });
                }
            }
            ImportType::ExistingKeyMaterial => {
                if request.claimed.is_some_and(|claimed| claimed != id) {
                    return Err(KmsError::key_material_mismatch());
                }
                let Some(known) = self.import.materials.iter_mut().find(|m| m.id == id) else {
                    return Err(KmsError::key_material_mismatch());
                };
                known.imported = true;
                known.expiration_model = imported.expiration_model;
                known.valid_to = imported.valid_to;
                if imported.description.is_some() {
                    known.description = imported.description;
                }
            }
        }
        if self.state == KeyState::PendingImport && self.import.complete() {
            self.state = KeyState::Enabled;
        }
        Ok(())
    }

    /// Deletes one imported material (the current one unless named). A pending material
    /// is forgotten; any other stays associated, and the key waits for it to be imported
    /// again. A key pending deletion keeps that state. Returns the id deleted, None when the
    /// key has no material to delete.
    pub fn remove_imported_material(
        &mut self,
        id: Option<MaterialId>,
    ) -> Result<Option<MaterialId>, KmsError> {
        self.check_external()?;
        let id = match id {
            Some(id) => id,
            None => match self.import.current() {
                Some(current) => current.id,
                None => return Ok(None),
            },
        };
        let Some(position) = self.import.materials.iter().position(|m| m.id == id) else {
            return Err(KmsError::material_not_associated(id, &self.arn));
        };
        let material = &mut self.import.materials[position];
        if !material.is_permanent() {
            self.import.materials.remove(position);
            return Ok(Some(id));
        }
        material.imported = false;
        material.expiration_model = None;
        material.valid_to = None;
        if !matches!(
            self.state,
            KeyState::PendingDeletion | KeyState::PendingReplicaDeletion
        ) {
            self.state = KeyState::PendingImport;
        }
        Ok(Some(id))
    }

    /// Deletes every imported material whose ValidTo has come, decided on this copy of the
    /// key (so that a retry after a concurrent re-import decides again).
    pub fn expire_imported_materials(&mut self, now: Millis) -> Result<Vec<MaterialId>, KmsError> {
        let expired = self.import.expired(now);
        for id in &expired {
            self.remove_imported_material(Some(*id))?;
        }
        Ok(expired)
    }

    /// RotateKeyOnDemand of an imported symmetric key: the pending material becomes
    /// current. The key's state is checked first (a key waiting for material is
    /// KMSInvalidStateException, pending import), then AWS's limit, then that something is
    /// pending.
    pub fn rotate_imported(&mut self, now: Millis, limit: u32) -> Result<(), KmsError> {
        self.check_usable()?;
        if self.key_spec != KeySpec::SymmetricDefault || self.custom_key_store.is_some() {
            return Err(self.origin_not_valid());
        }
        if self.rotation.on_demand_count >= limit {
            return Err(KmsError::on_demand_rotation_limit(&self.arn));
        }
        let Some(pending) = self.import.pending().map(|m| m.id) else {
            return Err(KmsError::nothing_pending_rotation(&self.arn));
        };
        for m in &mut self.import.materials {
            if m.state == MaterialState::Current {
                m.state = MaterialState::NonCurrent;
            } else if m.id == pending {
                m.state = MaterialState::Current;
                m.rotated_at = Some(now);
            }
        }
        self.rotation.on_demand_count += 1;
        self.current_material = pending;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::imported_material_id;
    use crate::key::Origin;
    use crate::material::KeyMaterial;
    use zeroize::Zeroizing;

    fn external() -> KeyMetadata {
        let mut k = crate::key::tests::key();
        k.origin = Origin::External;
        k.state = KeyState::PendingImport;
        k.public_key = None;
        k
    }

    fn id(n: u8) -> MaterialId {
        MaterialId::from_bytes([n; 32])
    }

    fn import(
        k: &mut KeyMetadata,
        m: MaterialId,
        kind: Option<ImportType>,
    ) -> Result<(), KmsError> {
        import_until(k, m, kind, None)
    }

    fn import_until(
        k: &mut KeyMetadata,
        m: MaterialId,
        kind: Option<ImportType>,
        valid_to: Option<Millis>,
    ) -> Result<(), KmsError> {
        k.import_material(&ImportRequest {
            material: m,
            import_type: kind,
            claimed: None,
            description: None,
            expiration_model: if valid_to.is_some() {
                EXPIRES
            } else {
                DOES_NOT_EXPIRE
            },
            valid_to,
        })
    }

    #[test]
    fn a_key_missing_a_material_cannot_come_back_through_deletion() {
        let mut k = external();
        import(&mut k, id(1), None).unwrap();
        import(&mut k, id(2), Some(ImportType::NewKeyMaterial)).unwrap();
        k.rotate_imported(10, 25).unwrap();
        k.remove_imported_material(Some(id(1))).unwrap();
        assert_eq!(k.state, KeyState::PendingImport);
        assert!(!k.material_usable(&id(1)) && k.material_usable(&id(2)));
        k.schedule_deletion(7, 20).unwrap();
        k.cancel_deletion().unwrap();
        assert_eq!(
            k.state,
            KeyState::PendingImport,
            "not Disabled, then Enabled"
        );
        assert!(k.enable().is_err());
        import(&mut k, id(1), None).unwrap();
        assert_eq!(k.state, KeyState::Enabled);
        // A complete key's cancelled deletion leaves it disabled, as in AWS.
        k.schedule_deletion(7, 20).unwrap();
        k.cancel_deletion().unwrap();
        assert_eq!(k.state, KeyState::Disabled);
    }

    #[test]
    fn expiry_is_decided_on_the_key_as_it_is_now() {
        let mut k = external();
        import_until(&mut k, id(1), None, Some(100)).unwrap();
        let stale = k.clone();
        // Re-imported with a later ValidTo meanwhile: the retried expiry removes nothing.
        import_until(&mut k, id(1), None, Some(500)).unwrap();
        assert_eq!(k.expire_imported_materials(200).unwrap(), vec![]);
        assert_eq!(k.state, KeyState::Enabled);
        let mut stale = stale;
        assert_eq!(stale.expire_imported_materials(200).unwrap(), vec![id(1)]);
        assert_eq!(stale.state, KeyState::PendingImport);
        // Material expires in every state; a key pending deletion stays so.
        k.schedule_deletion(7, 0).unwrap();
        assert_eq!(k.next_job_at(), Some(500));
        assert_eq!(k.expire_imported_materials(600).unwrap(), vec![id(1)]);
        assert_eq!(k.state, KeyState::PendingDeletion);
    }

    #[test]
    fn a_material_id_is_never_taken_on_trust() {
        let mut k = external();
        let claimed = ImportRequest {
            material: id(1),
            import_type: None,
            claimed: Some(id(1)),
            description: None,
            expiration_model: DOES_NOT_EXPIRE,
            valid_to: None,
        };
        assert!(matches!(
            k.import_material(&claimed),
            Err(KmsError::Validation(_))
        ));
        import(&mut k, id(1), None).unwrap();
        let other = ImportRequest {
            material: id(2),
            claimed: Some(id(1)),
            ..claimed
        };
        assert!(matches!(
            k.import_material(&other),
            Err(KmsError::IncorrectKeyMaterial(_))
        ));
        assert!(matches!(
            import(&mut k, id(2), Some(ImportType::ExistingKeyMaterial)),
            Err(KmsError::IncorrectKeyMaterial(_))
        ));
        assert!(matches!(
            import(&mut k, id(1), Some(ImportType::NewKeyMaterial)),
            Err(KmsError::IncorrectKeyMaterial(_))
        ));
        assert_eq!(k.import.materials.len(), 1);
    }

    #[test]
    fn one_pending_material_at_a_time_and_a_fixed_one_for_asymmetric_keys() {
        let mut k = external();
        import(&mut k, id(1), None).unwrap();
        assert!(matches!(
            k.rotate_imported(1, 25),
            Err(KmsError::InvalidState(_))
        ));
        import(&mut k, id(2), Some(ImportType::NewKeyMaterial)).unwrap();
        assert!(matches!(
            import(&mut k, id(3), Some(ImportType::NewKeyMaterial)),
            Err(KmsError::InvalidState(_))
        ));
        assert_eq!(k.current_material, id(1), "pending is not current");
        k.remove_imported_material(Some(id(2))).unwrap();
        assert_eq!(k.state, KeyState::Enabled);
        assert!(k.import.get(&id(2)).is_none());

        let mut rsa = external();
        rsa.key_spec = KeySpec::Rsa2048;
        rsa.key_usage = crate::key::KeyUsage::SignVerify;
        import(&mut rsa, id(1), None).unwrap();
        assert!(matches!(
            import(&mut rsa, id(2), None),
            Err(KmsError::IncorrectKeyMaterial(_))
        ));
        assert!(matches!(
            import(&mut rsa, id(1), Some(ImportType::ExistingKeyMaterial)),
            Err(KmsError::Validation(_))
        ));
    }

    /// HMAC treats a key longer than its block and that key's hash as one key; ids must not.
    #[test]
    fn materials_hmac_confuses_have_different_ids() {
        let key = crate::ids::KeyId::generate(false).unwrap();
        let long = vec![7u8; 80];
        let hashed = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &long);
        let mut padded = hashed.as_ref().to_vec();
        padded.resize(48, 0);
        let m = |b: &[u8]| KeyMaterial::from_bytes(Zeroizing::new(b.to_vec()));
        assert_ne!(
            imported_material_id(key, &m(&long)),
            imported_material_id(key, &m(&padded))
        );
        assert_ne!(
            imported_material_id(key, &m(hashed.as_ref())),
            imported_material_id(key, &m(&padded))
        );
    }

    #[test]
    fn the_one_material_form_of_earlier_versions_reads_and_is_still_written() {
        let legacy = format!(
            r#"{{"material":"{}","expiration_model":"{DOES_NOT_EXPIRE}"}}"#,
            id(4)
        );
        let state: ImportState = serde_json::from_str(&legacy).unwrap();
        let current = state.current().unwrap();
        assert_eq!((current.id, current.imported), (id(4), true));
        let written = serde_json::to_value(&state).unwrap();
        assert_eq!(written["material"], serde_json::json!(id(4).to_string()));
        let back: ImportState = serde_json::from_value(written).unwrap();
        assert_eq!(back, state);
    }
}
